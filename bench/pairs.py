"""Rounds in pairs: the same wrk load against two servers on one database, one with a
feature on and one with it off, back to back; the cost of the feature is the median
pair's ratio. What the abuse limits' and the metrics' benchmarks share.

Which server goes first alternates from round to round, so that a drift in the
machine's load favours neither; the median pair's ratio, not the totals', is the
figure, so that a burst of load from elsewhere moves one round, not the figure.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.server import Environment, running_server
from bench.wrk import EMPTY, Request, WrkResult, run_wrk

CONNECTIONS = 8


@dataclass(frozen=True)
class PairedRates:
    """The rates with the feature ``on`` and ``off`` (all rounds merged), and each
    round's on/off ratio."""

    on: WrkResult
    off: WrkResult
    pair_ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        return statistics.median(self.pair_ratios) if self.pair_ratios else 0.0

    @property
    def errors(self) -> int:
        return self.on.errors + self.off.errors

    @property
    def first_error(self) -> str | None:
        return self.on.first_error or self.off.first_error


def variant(env: Environment, **settings: str) -> Environment:
    """``env`` with ``LICENTIA_<NAME>`` settings added or replaced."""
    extra = {**env.extra, **{f"LICENTIA_{k.upper()}": v for k, v in settings.items()}}
    return Environment(env.database_url, env.master_key, env.workdir, extra)


def measure_pairs(
    on_env: Environment, off_env: Environment, request: Request, *, rounds: int, seconds: float
) -> PairedRates:
    """``rounds`` pairs of ``seconds`` of ``request`` against a server of each
    environment, after a one-second warm-up of both."""
    on, off, ratios = EMPTY, EMPTY, []
    with running_server(on_env) as with_it, running_server(off_env) as without:
        for server in (with_it, without):
            run_wrk(server.url, request, connections=CONNECTIONS, seconds=1)
        for round_ in range(rounds):
            order = (with_it, without) if round_ % 2 == 0 else (without, with_it)
            results = {
                s.url: run_wrk(s.url, request, connections=CONNECTIONS, seconds=seconds)
                for s in order
            }
            on_round, off_round = results[with_it.url], results[without.url]
            on, off = on.merge(on_round), off.merge(off_round)
            ratios.append(on_round.rate / off_round.rate if off_round.rate else 0.0)
    return PairedRates(on=on, off=off, pair_ratios=tuple(ratios))
