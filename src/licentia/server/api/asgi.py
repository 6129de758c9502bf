"""The factory uvicorn calls (``licentia.server.api.asgi:build``), one per worker."""

from __future__ import annotations

from fastapi import FastAPI

from licentia.server.api.app import create_app
from licentia.server.settings import Settings


def build() -> FastAPI:
    return create_app(Settings())
