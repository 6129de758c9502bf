"""Blocking route code runs on the event loop's thread pool, handed over once.

FastAPI hands a plain ``def`` route to anyio's thread pool, and then hands its return
value to the pool once more to validate it against the response model: two hand-offs,
each costing the event loop more CPU than a cheap database read. A router built with
``route_class=ThreadedRoute`` keeps its plain ``def`` routes; each is wrapped in a
coroutine that runs it on the loop's default executor (one cheaper hand-off), and
FastAPI then validates the answer on the loop. ``create_app`` sizes that executor
(``LICENTIA_THREADS``). docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi.routing import APIRoute

T = TypeVar("T")


class ThreadedRoute(APIRoute):
    """An APIRoute whose blocking endpoint runs on the loop's default executor."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_thread(endpoint), **kwargs)


def in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function with the same signature (FastAPI reads the
    parameters through ``__wrapped__``); a coroutine function is returned as it is."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        call = functools.partial(contextvars.copy_context().run, endpoint, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, call)

    return run


async def blocking(function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` on the loop's default executor (the pool routes use), in
    a copy of the caller's context (its log lines carry the request's id)."""
    call = functools.partial(contextvars.copy_context().run, function, *args)
    return await asyncio.get_running_loop().run_in_executor(None, call)


def install_executor(threads: int) -> ThreadPoolExecutor:
    """Give the running loop a default executor of ``threads`` threads (a request that
    waits, e.g. a seat checkout in line, holds one) and return it for shutdown."""
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="licentia-request")
    asyncio.get_running_loop().set_default_executor(executor)
    return executor
