"""License Central's background work: every kind of durable job, registered in one
place (``kinds``), the loop that runs them in each server process (``loop``), and the
figures of every queue for monitoring (``figures``)."""

from licentia.server.background.figures import queue_figures
from licentia.server.background.kinds import Resources, job_kinds
from licentia.server.background.loop import run_jobs_forever

__all__ = ["Resources", "job_kinds", "queue_figures", "run_jobs_forever"]
