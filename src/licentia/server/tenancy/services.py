"""Vendors, users, sessions and API keys; and turning a credential into an Actor."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.orm import Session

from licentia.domain.actors import OPERATOR_CHAIN, Actor, ActorKind
from licentia.domain.errors import (
    AlreadyExistsError,
    AuthenticationError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.scopes import ROLE_SCOPES, SCOPES, Role
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.tenancy.models import ApiKey, UserSession, Vendor, VendorUser
from licentia.server.tenancy.passwords import check_password_rule, hash_password, password_matches

API_KEY_PREFIX = "lic_"
SESSION_PREFIX = "lis_"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_LAST_USED_GRANULARITY = timedelta(seconds=60)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_vendor(session: Session, actor: Actor, *, slug: str, name: str) -> Vendor:
    """Raises ValidationError for a bad slug, AlreadyExistsError if it is taken."""
    if not _SLUG.match(slug):
        raise ValidationError("a slug is 2-63 lowercase letters, digits and dashes", field="slug")
    if session.scalar(select(Vendor.id).where(Vendor.slug == slug)):
        raise AlreadyExistsError(f"vendor {slug!r} already exists", field="slug")
    vendor = Vendor(slug=slug, name=name)
    session.add(vendor)
    session.flush()
    record(
        session,
        actor,
        "vendor.created",
        "vendor",
        vendor.id,
        after={"slug": slug, "name": name},
        chain=OPERATOR_CHAIN,
    )
    return vendor


def get_vendor_by_slug(session: Session, slug: str) -> Vendor:
    vendor = session.scalar(select(Vendor).where(Vendor.slug == slug))
    if vendor is None:
        raise NotFoundError("vendor", slug)
    return vendor


def vendor_id_of(session: Session, slug: str) -> str | None:
    """The id of the vendor with this slug; None if there is none."""
    return session.scalar(select(Vendor.id).where(Vendor.slug == slug))


def list_vendors(session: Session) -> list[Vendor]:
    return list(session.scalars(select(Vendor).order_by(Vendor.slug)))


def create_user(
    session: Session, actor: Actor, vendor_id: str, *, email: str, password: str, role: str
) -> VendorUser:
    """Raises ValidationError (weak password, unknown role), AlreadyExistsError (email taken)."""
    if role not in {r.value for r in Role}:
        raise ValidationError(
            f"role must be one of {', '.join(r.value for r in Role)}", field="role"
        )
    check_password_rule(password)
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationError("not an e-mail address", field="email")
    taken = select(VendorUser.id).where(
        VendorUser.vendor_id == vendor_id, VendorUser.email == email
    )
    if session.scalar(taken):
        raise AlreadyExistsError(f"user {email} already exists", field="email")
    user = VendorUser(
        vendor_id=vendor_id, email=email, password_hash=hash_password(password), role=role
    )
    session.add(user)
    session.flush()
    record(
        session,
        _for_vendor(actor, vendor_id),
        "user.created",
        "user",
        user.id,
        after={"email": email, "role": role},
    )
    return user


def log_out(session: Session, token: str) -> None:
    """End the session of ``token`` (nothing happens for an unknown token)."""
    session.execute(delete(UserSession).where(UserSession.token_hash == _sha256(token)))


def list_users(session: Session, vendor_id: str) -> list[VendorUser]:
    query = select(VendorUser).where(VendorUser.vendor_id == vendor_id).order_by(VendorUser.email)
    return list(session.scalars(query))


@dataclass(frozen=True)
class LoggedIn:
    token: str  # shown once; only its hash is kept
    user: VendorUser
    expires_at: datetime


def log_in(
    session: Session, *, vendor_slug: str, email: str, password: str, ttl: timedelta
) -> LoggedIn:
    """A new session token for valid credentials; AuthenticationError otherwise.

    The same error, after the same hashing work, for an unknown vendor, an unknown
    user and a wrong password, so the answer reveals nothing. The password is checked
    inside the caller's unit of work; the HTTP API checks it outside any
    (:mod:`licentia.server.logins.bounded`).
    """
    candidate = find_login(session, vendor_slug=vendor_slug, email=email)
    if not password_matches(candidate.password_hash, password):
        raise AuthenticationError(WRONG_CREDENTIALS)
    return start_session(session, candidate, ttl=ttl)


WRONG_CREDENTIALS = "wrong vendor, e-mail or password"


@dataclass(frozen=True)
class LoginCandidate:
    """Who a login names, read before its password is checked (so that the check runs
    outside any transaction); the hash is None for an unknown vendor or user, or a
    disabled one (the check then hashes against a dummy: the time reveals nothing)."""

    user_id: str | None
    password_hash: str | None


def find_login(session: Session, *, vendor_slug: str, email: str) -> LoginCandidate:
    row = session.execute(
        select(VendorUser.id, VendorUser.password_hash)
        .join(Vendor, Vendor.id == VendorUser.vendor_id)
        .where(
            Vendor.slug == vendor_slug,
            VendorUser.email == email.strip().lower(),
            VendorUser.disabled_at.is_(None),
        )
    ).first()
    return LoginCandidate(row.id, row.password_hash) if row else LoginCandidate(None, None)


def start_session(session: Session, candidate: LoginCandidate, *, ttl: timedelta) -> LoggedIn:
    """The session of a candidate whose password matched. Raises AuthenticationError
    if the user was disabled or the password changed since it was read."""
    user = session.get(VendorUser, candidate.user_id) if candidate.user_id else None
    unchanged = user is not None and user.password_hash == candidate.password_hash
    if user is None or not unchanged or user.disabled_at is not None:
        raise AuthenticationError(WRONG_CREDENTIALS)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + ttl
    session.add(
        UserSession(
            token_hash=_sha256(token),
            user_id=user.id,
            vendor_id=user.vendor_id,
            expires_at=expires_at,
        )
    )
    return LoggedIn(token, user, expires_at)


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    secret: str  # shown once, never stored


def create_api_key(
    session: Session, actor: Actor, vendor_id: str, *, name: str, scopes: list[str]
) -> IssuedApiKey:
    """Raises ValidationError for an unknown scope or an empty list, and
    PermissionDeniedError for a scope the actor does not hold itself: a key can only
    hand on what its creator may do, or keys:write alone would grant everything."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationError(
            f"unknown scopes {unknown}" if unknown else "give at least one scope", field="scopes"
        )
    for scope in sorted(set(scopes)):
        actor.require(scope)
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        vendor_id=vendor_id,
        name=name,
        prefix=prefix,
        secret_hash=_sha256(secret),
        scopes=sorted(set(scopes)),
    )
    session.add(key)
    session.flush()
    record(
        session,
        _for_vendor(actor, vendor_id),
        "api_key.created",
        "api_key",
        key.id,
        after={"name": name, "prefix": prefix, "scopes": key.scopes},
    )
    return IssuedApiKey(key, secret)


def revoke_api_key(session: Session, actor: Actor, vendor_id: str, key_id: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.vendor_id == vendor_id))
    if key is None:
        raise NotFoundError("api key", key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(
            session,
            _for_vendor(actor, vendor_id),
            "api_key.revoked",
            "api_key",
            key.id,
            before={"revoked": False},
            after={"revoked": True},
        )
    return key


def api_keys_query(vendor_id: str) -> Select[ApiKey]:
    """The vendor's API keys (revoked ones too), for a paginated list."""
    return select(ApiKey).where(ApiKey.vendor_id == vendor_id)


def list_api_keys(session: Session, vendor_id: str) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.vendor_id == vendor_id).order_by(ApiKey.id))
    )


@dataclass(frozen=True)
class Credential:
    """What a bearer token was verified as."""

    actor: Actor
    expires_at: datetime | None  # a session's end; None for an API key
    needs_touch: bool  # an API key whose last-use time is older than a minute


def authenticate(session: Session, token: str, *, source_ip: str | None = None) -> Credential:
    """The credential behind a bearer token (API key or user session).

    Raises AuthenticationError for an unknown, revoked or expired credential. Reads
    only: when ``needs_touch`` is set the caller records the use with ``touch_api_key``
    (coarse on purpose: recording every request would turn every read into a write).
    """
    if token.startswith(API_KEY_PREFIX):
        return _authenticate_api_key(session, token, source_ip)
    if token.startswith(SESSION_PREFIX):
        return _authenticate_session(session, token, source_ip)
    raise AuthenticationError("unknown credential")


def _authenticate_api_key(session: Session, token: str, source_ip: str | None) -> Credential:
    prefix = token[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.secret_hash, _sha256(token)):
        raise AuthenticationError("unknown API key")
    if key.revoked_at is not None:
        raise AuthenticationError("this API key was revoked")
    actor = Actor(ActorKind.API_KEY, key.id, key.vendor_id, frozenset(key.scopes), source_ip)
    last = key.last_used_at
    return Credential(actor, None, last is None or utcnow() - last > _LAST_USED_GRANULARITY)


def touch_api_key(session: Session, key_id: str) -> None:
    key = session.get(ApiKey, key_id)
    if key is not None:
        key.last_used_at = utcnow()


def _authenticate_session(session: Session, token: str, source_ip: str | None) -> Credential:
    row = session.execute(_SESSION, {"token_hash": _sha256(token)}).first()
    if row is None or row[0].expires_at <= utcnow() or row[1].disabled_at is not None:
        raise AuthenticationError("the session is unknown or has expired; log in again")
    user = row[1]
    actor = Actor(ActorKind.USER, user.id, user.vendor_id, ROLE_SCOPES[Role(user.role)], source_ip)
    return Credential(actor, row[0].expires_at, needs_touch=False)


_SESSION = (  # built once: every console page and session-authenticated call asks
    select(UserSession, VendorUser)
    .join(VendorUser, VendorUser.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash", type_=UserSession.token_hash.type))
)


def _for_vendor(actor: Actor, vendor_id: str) -> Actor:
    """The operator acting inside one vendor writes to that vendor's chain."""
    if actor.vendor_id == vendor_id:
        return actor
    return Actor(actor.kind, actor.id, vendor_id, actor.scopes, actor.source_ip)
