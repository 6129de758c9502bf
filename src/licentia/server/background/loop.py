"""The loop each server process runs: due jobs every ``job_poll_seconds``."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from licentia.server.jobs import Worker

log = logging.getLogger("licentia.jobs")


async def run_jobs_forever(worker: Worker, every: float) -> None:
    """Run due jobs, then wait ``every`` seconds, until cancelled. Several processes
    may run this at once on PostgreSQL: each claims other jobs."""
    if every <= 0:
        return
    while True:
        try:
            await run_in_threadpool(worker.run_due)
        except Exception:  # a failed round (the database away) must not stop the next one
            log.exception("running jobs failed")
        await asyncio.sleep(every)
