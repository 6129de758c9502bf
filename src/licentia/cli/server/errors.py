"""The domain's errors and a failing database as command errors (docs/cli.md lists the
exit codes): the one place where the server's error tree meets the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from licentia.cli.output import (
    EXIT_CONFIGURATION,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_NOT_ALLOWED,
    EXIT_NOT_FOUND,
    CommandError,
    as_command_error,
    guarded,
)
from licentia.client import LicentiaClientError
from licentia.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    LicentiaError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

EXIT_CODES: tuple[tuple[type[LicentiaError], int], ...] = (
    (ValidationError, EXIT_INVALID),
    (AuthenticationError, EXIT_NOT_ALLOWED),
    (PermissionDeniedError, EXIT_NOT_ALLOWED),
    (NotFoundError, EXIT_NOT_FOUND),
    (ConflictError, EXIT_CONFLICT),
    (ConfigurationError, EXIT_CONFIGURATION),
)


@contextmanager
def server_errors() -> Iterator[None]:
    """Turn a domain error, a client error or a database failure into a command error."""
    try:
        yield
    except LicentiaError as error:
        exit_code = next((c for kind, c in EXIT_CODES if isinstance(error, kind)), EXIT_FAILED)
        raise CommandError(error.message, error.code, exit_code) from error
    except LicentiaClientError as error:
        raise as_command_error(error) from error
    except SQLAlchemyError as error:
        reason = error.args[0] if error.args else ""
        raise CommandError(
            f"the database failed: {type(error).__name__}: {reason}", "DATABASE_ERROR", EXIT_FAILED
        ) from error


def server_guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """``guarded`` for the server's commands (see ``licentia.cli.output.guarded``)."""
    return guarded(function, server_errors)


__all__ = ["EXIT_CODES", "server_errors", "server_guarded"]
