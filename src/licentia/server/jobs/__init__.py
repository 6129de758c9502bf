"""Durable jobs: a table of work that survives a node's death.

A use case asks for work by ``enqueue`` in its own transaction (the job exists if and
only if the change does). Every node's ``Worker`` claims due jobs with
``FOR UPDATE SKIP LOCKED`` (PostgreSQL; on SQLite the single server process runs them)
under a lease; a job whose node dies is claimed again when the lease ends. A kind is
registered once with ``Registry.one_off`` or ``Registry.every`` (periodic, once per
period across all nodes). ``queue_figures`` gives each kind's depth and lag.
"""

from licentia.server.jobs.queue import Job, LeaseLostError, enqueue
from licentia.server.jobs.registry import Effect, Registry
from licentia.server.jobs.runner import Outcome, Worker
from licentia.server.jobs.stats import KindFigures, queue_figures

__all__ = [
    "Effect",
    "Job",
    "KindFigures",
    "LeaseLostError",
    "Outcome",
    "Registry",
    "Worker",
    "enqueue",
    "queue_figures",
]
