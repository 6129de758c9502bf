"""License Central's refusals, as the commands that call it over HTTP (``--server``)
report them: the problem document's code and detail, and the exit code the same
error has when the command runs on this machine's database.

Needs only the ``cli`` extra (httpx answers are read, nothing of the server imported).
"""

from __future__ import annotations

from typing import Any

from licentia.cli.output import (
    EXIT_CONFLICT,
    EXIT_INVALID,
    EXIT_NETWORK,
    EXIT_NOT_ALLOWED,
    EXIT_NOT_FOUND,
    EXIT_SERVER_REFUSED,
    CommandError,
)

# A refusal's HTTP status, read back as the exit code its error has on this machine.
_EXIT_BY_STATUS = {400: EXIT_INVALID, 401: EXIT_NOT_ALLOWED, 403: EXIT_NOT_ALLOWED}
_EXIT_BY_STATUS |= {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT, 413: EXIT_INVALID}
_EXIT_BY_STATUS |= {422: EXIT_INVALID}


def problem_in(response: Any) -> dict[str, Any]:
    """The answer's problem document; {} when it is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def refusal(status: int, problem: dict[str, Any], server: str) -> CommandError:
    code = problem.get("code") if isinstance(problem.get("code"), str) else f"HTTP_{status}"
    detail = problem.get("detail")
    message = detail if isinstance(detail, str) and detail else f"License Central answered {status}"
    if status == 404 and code in ("NOT_FOUND", f"HTTP_{status}"):
        message = f"{message} (is {server} License Central, and the vendor slug right?)"
    exit_code = _EXIT_BY_STATUS.get(status, EXIT_SERVER_REFUSED)
    return CommandError(str(message), str(code), exit_code if status < 500 else EXIT_NETWORK)
