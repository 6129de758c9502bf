"""The audit events of logins: ``login.failed`` and ``login.succeeded``, in the
vendor's chain, with the source address (a login at a vendor that does not exist is
recorded nowhere). Refusals before the password is checked are not recorded: a flood of
them would only grow the log."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.server.audit.services import record
from licentia.server.logins.services import STAFF, AccountState

_AUDITED_EMAIL = 320  # characters of the e-mail a failed login named, kept in its event


@dataclass(frozen=True)
class LoginAttempt:
    """One login, as its audit event tells it: who it named (no user for an e-mail
    nobody at the vendor has), from where, and what came of it."""

    realm: str  # logins.services.STAFF or CUSTOMER
    vendor_id: str | None
    user_id: str | None
    email: str
    source_ip: str | None

    def failed(self, session: Session, state: AccountState, *, reason: str = "password") -> None:
        """Record a failure (``reason``: a wrong ``password``, or a wrong second-factor
        ``code``) and the account's state after it."""
        locked_until = state.locked_until.isoformat() if state.locked_until else None
        after = {"email": self.email[:_AUDITED_EMAIL], "failures": state.failures}
        after |= {"locked_until": locked_until, "reason": reason}
        self._record(session, "login.failed", after)

    def succeeded(self, session: Session) -> None:
        self._record(session, "login.succeeded", {"email": self.email[:_AUDITED_EMAIL]})

    def _record(self, session: Session, action: str, after: dict[str, object]) -> None:
        if self.vendor_id is None:
            return
        staff = self.realm == STAFF
        kind = ActorKind.USER if staff else ActorKind.CUSTOMER_USER
        actor = Actor(kind, self.user_id, self.vendor_id, source_ip=self.source_ip)
        object_type = "user" if staff else "customer_user"
        record(session, actor, action, object_type, self.user_id, after=after)
