"""Which limits a request counts against.

Every request under ``/api/`` counts against the ``api`` family, every page of the
portal and the console against ``pages``. A route that is worth more to a guesser (a
login, a ticket code, a container credential, an e-mailed link) declares a stricter
family of its own with :func:`limited`, and its requests then count against both.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__licentia_rate_limit_family__"


class Family(StrEnum):
    """A family of routes sharing one limit; its setting is ``LICENTIA_RATE_LIMIT_<NAME>``."""

    API = "api"  # every API call
    PAGES = "pages"  # every page of the License Portal and the vendor console
    LOGIN = "login"  # logging in with a password (API and both web fronts)
    TICKET = "ticket"  # redeeming a ticket code (cloud containers, the portal)
    REGISTRATION = "registration"  # registering a device with a container credential
    ACTIVATION = "activation"  # a device activating with a ticket, online or by file
    PASSWORD_RESET = "password-reset"  # noqa: S105 - setting a password from an e-mailed link

    @property
    def setting(self) -> str:
        """The name of its field in ``Settings``."""
        return "rate_limit_" + self.value.replace("-", "_")


def limited(family: Family) -> Callable[[F], F]:
    """Mark a route's function: its requests count against ``family`` as well as
    against their front's (``api`` or ``pages``). Put it below the route's decorator,
    as :func:`licentia.server.api.hot.hot` is."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _MARK, family)
        return endpoint

    return mark


def family_of(endpoint: Callable[..., Any]) -> Family | None:
    """The family a route's function declared with :func:`limited`, if any."""
    family: Family | None = getattr(endpoint, _MARK, None)
    return family
