"""Per-request context: who is calling, and how to run a unit of work for them.

Routes ask for a ``Context`` with the scope they need; they never build sessions or
services themselves. A write runs in one transaction, committed at the end, and is
retried when a concurrent request won a uniqueness race (the retry then sees the
winner's row and answers as a replay would).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import AuthenticationError
from licentia.server.api.bearer import Bearer
from licentia.server.api.credentials import CredentialCache
from licentia.server.api.hot_requests import HotRequest, PassOn, parsed_by
from licentia.server.api.openapi import VENDOR_CREDENTIAL
from licentia.server.api.threads import blocking
from licentia.server.cloud.checkout import SeatTakes
from licentia.server.cloud.consumptions import Consumptions
from licentia.server.cloud.releases import Releases
from licentia.server.cloud.renewals import Renewals
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.db.runner import Runner
from licentia.server.idempotency.services import (
    StoredAnswer,
    claim_key,
    find_answer,
    remember_answer,
    request_fingerprint,
)
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.reads import LicenseReads
from licentia.server.push.hub import PushHub
from licentia.server.settings import Settings
from licentia.server.tenancy.passwords import PasswordChecks
from licentia.server.tenancy.services import authenticate, touch_api_key

T = TypeVar("T")
# The OpenAPI document shows this one as two alternatives, ApiKey and StaffSession
# (licentia.server.api.openapi).
_bearer = Bearer(
    scheme_name=VENDOR_CREDENTIAL,
    description="An API key (lic_…) or a staff session token (lis_…)",
)


@dataclass(frozen=True)
class Services:
    """What the app was built with; stored on ``app.state.services``."""

    settings: Settings
    db: Database
    master: MasterKey
    credentials: CredentialCache
    runner: Runner  # where hot statements run (licentia.server.db.runner)
    renewals: Renewals
    consumptions: Consumptions
    releases: Releases
    seat_takes: SeatTakes
    license_reads: LicenseReads
    password_checks: PasswordChecks
    push: PushHub  # the push streams of this process (licentia.server.push)


@dataclass(frozen=True)
class Context:
    services: Services
    actor: Actor

    @property
    def vendor_id(self) -> str:
        assert self.actor.vendor_id is not None
        return self.actor.vendor_id

    @property
    def master(self) -> MasterKey:
        return self.services.master

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read session (again on a new connection if the database
        dropped the first: reads are always safe to repeat)."""
        return run_read(self.services.db, work)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction, retrying lost uniqueness races."""
        return run_write(self.services.db, work)

    def create(
        self,
        request: Request,
        payload: BaseModel | None,
        work: Callable[[Session], BaseModel],
        *,
        status_code: int = 201,
        status_for: Callable[[Any], int] | None = None,
    ) -> JSONResponse:
        """A creating POST: honours ``Idempotency-Key`` by replaying the stored answer."""
        key = request.headers.get("Idempotency-Key")
        fingerprint = ""
        if key is not None:  # most creating POSTs come without one: spare them the hash
            body = payload.model_dump(mode="json") if payload is not None else None
            fingerprint = request_fingerprint(request.method, request.url.path, body)

        def unit(session: Session) -> StoredAnswer:
            claim = None
            if key is not None:
                stored = find_answer(session, self.vendor_id, key, fingerprint, self.master)
                if stored is not None:
                    return stored
                claim = claim_key(session, self.vendor_id, key, fingerprint)
            result = work(session)
            status = status_for(result) if status_for else status_code
            answer = StoredAnswer(status, result.model_dump(mode="json"))
            if claim is not None:
                remember_answer(session, claim, answer, self.master)
            return answer

        answer = self.write(unit)
        return JSONResponse(answer.body, status_code=answer.status_code)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _hot_services(request: HotRequest) -> Services:
    return request.services


@parsed_by(_hot_services)
async def app_services(request: Request) -> Services:
    """A dependency: what the app was built with (asynchronous: no thread hop)."""
    return services_of(request)


def require(scope: str) -> Callable[..., Awaitable[Context]]:
    """A dependency: the caller's Context, if its credential holds ``scope``.

    Asynchronous so that a request whose credential is cached costs no thread hop
    before the route's own; a credential not seen lately is read on the loop's executor.
    """

    async def hot_context(request: HotRequest) -> Context:
        if request.token is None:
            raise PassOn  # FastAPI answers the 401
        return await context_for(request.services, request.token, request.client_host, scope)

    @parsed_by(hot_context)
    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Context:
        if credentials is None:
            raise AuthenticationError("send 'Authorization: Bearer <API key or session token>'")
        source_ip = request.client.host if request.client else None
        return await context_for(services_of(request), credentials.credentials, source_ip, scope)

    return dependency


async def context_for(services: Services, token: str, source_ip: str | None, scope: str) -> Context:
    """The Context of a caller presenting ``token``, if it holds ``scope``; raises
    AuthenticationError or PermissionDeniedError."""
    actor = services.credentials.get(token, source_ip)
    if actor is None:
        actor = await blocking(verify, services, token, source_ip)
    actor.require(scope)
    return Context(services, actor)


def verify(services: Services, token: str, source_ip: str | None) -> Actor:
    """Read the credential from the database, remember it, and record its use."""
    credential = run_read(
        services.db, lambda session: authenticate(session, token, source_ip=source_ip)
    )
    services.credentials.put(token, credential.actor, expires_at=credential.expires_at)
    key_id = credential.actor.id
    if credential.needs_touch and key_id is not None:
        run_write(services.db, lambda session: touch_api_key(session, key_id))
    return credential.actor
