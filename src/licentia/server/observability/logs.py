"""How the server's log lines look: structlog over the standard library's logging.

Every logger of the process (Licentia's own ``logging.getLogger`` ones, uvicorn's,
SQLAlchemy's) ends in one handler whose formatter is structlog's: each line gets the
time, the level, the logger's name, the request id of the request being served (from
structlog's context variables, bound for each request by
:class:`licentia.server.api.hot.LicentiaApp`),
and then passes :func:`~licentia.server.observability.redaction.redact_fields` before
it is written as one JSON object (production) or for a person to read (development).

uvicorn's access log becomes fields of its own (``client``, ``method``, ``path``,
``status``) instead of one formatted string. ``licentia serve`` hands
:func:`uvicorn_log_config` to uvicorn, which applies it in every worker process.
"""

from __future__ import annotations

from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from licentia.server.observability.redaction import redact_fields

ACCESS_LOGGER = "uvicorn.access"


def _access_fields(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """uvicorn's access line (client, method, path, HTTP version, status as the
    record's arguments) as fields; other lines' arguments are in their message."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    access = record is not None and record.name == ACCESS_LOGGER
    if access and isinstance(args, tuple) and len(args) == 5:
        client, method, path, version, status = args
        event.update(
            event="request",
            client=client,
            method=method,
            path=path,
            http_version=version,
            status=status,
        )
    return event


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


class Formatter(structlog.stdlib.ProcessorFormatter):
    """The one formatter: JSON lines or a console's, secrets redacted either way."""

    def __init__(self, as_json: bool = True) -> None:
        renderer: Processor = (
            structlog.processors.JSONRenderer()
            if as_json
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        super().__init__(
            pass_foreign_args=True,  # the access line's fields, for _access_fields
            foreign_pre_chain=[*_shared(), _access_fields],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_fields,
                renderer,
            ],
        )


def formatter(as_json: bool = True) -> Formatter:
    """The factory ``logging.config.dictConfig`` calls (from :func:`uvicorn_log_config`)."""
    return Formatter(as_json)


def uvicorn_log_config(*, as_json: bool, level: str) -> dict[str, Any]:
    """A ``dictConfig`` for uvicorn: every logger to standard output through
    :class:`Formatter`. Only names and flags, so that it pickles to worker processes."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "licentia": {"()": f"{__name__}.formatter", "as_json": as_json},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "licentia",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            # uvicorn's loggers write through the root's handler, as every other one.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            ACCESS_LOGGER: {"handlers": [], "propagate": True},
            **_libraries(debug=level.lower() == "debug"),
        },
    }


def _libraries(*, debug: bool) -> dict[str, Any]:
    """Libraries that log what they do at INFO: SQLAlchemy every statement (at DEBUG
    also every row it reads, which would be customers' data), httpx every request
    (a webhook endpoint's address). Their statements and requests only when
    debugging, and never the rows; their warnings always."""
    chatty = "INFO" if debug else "WARNING"
    return {
        "sqlalchemy.engine": {"level": chatty},
        "sqlalchemy.pool": {"level": chatty},
        "httpx": {"level": chatty},
        "httpcore": {"level": chatty},
        "alembic": {"level": chatty},
    }


def configure_logging(*, as_json: bool, level: str) -> None:
    """Apply :func:`uvicorn_log_config` in this process (for a process that serves
    the app without ``licentia serve``)."""
    import logging.config

    logging.config.dictConfig(uvicorn_log_config(as_json=as_json, level=level))


__all__ = ["Formatter", "configure_logging", "formatter", "uvicorn_log_config"]
