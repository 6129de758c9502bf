"""The factory uvicorn calls (``licentia.server.api.asgi:build``), one per worker."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from licentia.server.api.app import create_app
from licentia.server.settings import Settings


def build() -> FastAPI:
    app = create_app(Settings())
    # What start-up made (modules, the app, its caches: some 280,000 objects) lives as
    # long as the process. Frozen, it is out of the cyclic collector's sight: a full
    # collection, which falls on some request, then scans only what came after.
    gc.collect()
    gc.freeze()
    return app
