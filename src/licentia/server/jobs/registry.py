"""The kinds of job a server runs: a name, what running one does, and for a periodic
kind its period.

A handler gets the claimed ``Job`` and may return an ``Effect``: the writes that make
its result, committed in the very transaction that marks the job done. A job whose
node dies before that commit left nothing and runs again; one that committed is
never run again. So a handler whose whole effect is in the database happens exactly
once; one that acts outside it (sends a mail, calls a URL) must make that act
idempotent by the job's id or a natural key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from licentia.server.jobs.queue import DEFAULT_ATTEMPTS, Job

Effect = Callable[[Session], object]
Handler = Callable[[Job], Effect | None]


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Handler
    max_attempts: int = DEFAULT_ATTEMPTS
    period: timedelta | None = None  # periodic: one job per period, across all nodes


class Registry:
    """Every kind of job, by name. Registering one is one line::

    jobs.one_off("mail.send", send_mail)
    jobs.every("seats.sweep", timedelta(seconds=30), sweep_seats)
    """

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def one_off(self, name: str, handler: Handler, *, max_attempts: int = DEFAULT_ATTEMPTS) -> None:
        """Jobs of this kind run when ``enqueue`` asks for one."""
        self._add(Kind(name, handler, max_attempts))

    def every(
        self, name: str, period: timedelta, handler: Handler, *, max_attempts: int = 3
    ) -> None:
        """One job of this kind per ``period`` (periods counted from the Unix epoch),
        whichever node asks first; its payload holds the period's start, ``period``."""
        if period <= timedelta(0):
            raise ValueError(f"the period of {name!r} must be positive")
        self._add(Kind(name, handler, max_attempts, period))

    def _add(self, kind: Kind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"a job kind {kind.name!r} is registered already")
        self._kinds[kind.name] = kind

    def kind(self, name: str) -> Kind:
        return self._kinds[name]

    @property
    def names(self) -> list[str]:
        return sorted(self._kinds)

    @property
    def periodic(self) -> list[Kind]:
        return [kind for kind in self._kinds.values() if kind.period is not None]
