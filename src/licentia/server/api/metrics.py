"""What ``GET /metrics`` answers: the processes' counters and the database's gauges,
in Prometheus's text format (docs/operations.md#metrics).

The counters come from this process, or, under ``licentia serve --workers N``, from
the files every worker writes (prometheus-client's multiprocess mode: the folder in
``PROMETHEUS_MULTIPROC_DIR``, made by ``licentia serve``). The gauges are read from
the database at each scrape (:class:`DatabaseGauges`, :class:`QueueGauges`): they are
the same whichever process or node answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from licentia.server.background import queue_figures
from licentia.server.background.figures import WEBHOOK_DELIVERY
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read
from licentia.server.jobs import KindFigures
from licentia.server.reports.seat_gauges import ProductSeats, seats_by_product

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable


class DatabaseGauges(Collector):
    """Gauges of the database's state, read when scraped."""

    def __init__(self, read_seats: Callable[[], list[ProductSeats]]) -> None:
        self._read_seats = read_seats

    def collect(self) -> Iterator[Metric]:
        labels = ("vendor", "product")
        seats = GaugeMetricFamily(
            "licentia_seats",
            "Seats of the seat pools of a product (all its licenses).",
            labels=labels,
        )
        in_use = GaugeMetricFamily(
            "licentia_seats_in_use",
            "Seats of a product held now (leases not expired).",
            labels=labels,
        )
        for row in self._read_seats():
            seats.add_metric((row.vendor, row.product), row.seats)
            in_use.add_metric((row.vendor, row.product), row.in_use)
        yield seats
        yield in_use


class QueueGauges(Collector):
    """The job queues' figures per kind of work (``background.queue_figures``: one
    grouped query), read when scraped. Every kind in ``kinds`` has its series, 0 when
    its queue is empty, so that a dashboard and an alert see a series that is there."""

    def __init__(self, read_figures: Callable[[], list[KindFigures]], kinds: list[str]) -> None:
        self._read_figures = read_figures
        self._kinds = kinds

    def collect(self) -> Iterator[Metric]:
        families = {
            "depth": GaugeMetricFamily(
                "licentia_job_queue_depth",
                "Jobs waiting to run (due or scheduled later, running ones included).",
                labels=("kind",),
            ),
            "due": GaugeMetricFamily(
                "licentia_job_queue_due",
                "Jobs whose time has come and that have not finished yet.",
                labels=("kind",),
            ),
            "lag_seconds": GaugeMetricFamily(
                "licentia_job_queue_lag_seconds",
                "How long the oldest due job has waited past its time (0 when none is due).",
                labels=("kind",),
            ),
            "failed": GaugeMetricFamily(
                "licentia_jobs_failed",
                "Jobs failed for good (every attempt spent), kept until an operator acts.",
                labels=("kind",),
            ),
        }
        figures = {figure.kind: figure for figure in self._read_figures()}
        for kind in sorted(set(self._kinds) | set(figures)):
            figure = figures.get(kind, KindFigures(kind, 0, 0, 0.0, 0))
            for name, family in families.items():
                family.add_metric((kind,), getattr(figure, name))
        yield from families.values()


class Exposition:
    """The text ``/metrics`` answers, for one app."""

    def __init__(
        self, db: Database, kinds: list[str] | None = None, extra: tuple[Collector, ...] = ()
    ) -> None:
        """``kinds``: the job kinds this server runs, each reported even when idle."""
        if os.environ.get(MULTIPROCESS_DIR):
            self._counters = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._counters)  # type: ignore[no-untyped-call]
        else:
            self._counters = REGISTRY
        self._gauges = CollectorRegistry(auto_describe=False)
        self._gauges.register(DatabaseGauges(lambda: run_read(db, _seats)))
        every_kind = [*(kinds or []), WEBHOOK_DELIVERY]
        self._gauges.register(QueueGauges(lambda: queue_figures(db), every_kind))
        for collector in extra:
            self._gauges.register(collector)

    def text(self) -> bytes:
        """Blocking (it reads the database, and the workers' files)."""
        return generate_latest(self._counters) + generate_latest(self._gauges)


def _seats(session: Any) -> list[ProductSeats]:
    return seats_by_product(session, utcnow())
