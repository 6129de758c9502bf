"""``GET /metrics`` for Prometheus: only for a scraper that presents the operator's
token (``LICENTIA_METRICS_TOKEN``); without that setting the path does not exist."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from licentia.domain.errors import AuthenticationError, NotFoundError
from licentia.server.api.bearer import bearer_credential
from licentia.server.api.context import services_of
from licentia.server.api.threads import blocking

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The metrics of docs/operations.md, in Prometheus's text format."""
    token = services_of(request).settings.metrics_token
    if token is None:
        raise NotFoundError("path", request.url.path)
    presented = bearer_credential(request.headers.get("Authorization")) or ""
    if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        raise AuthenticationError("/metrics needs the bearer token of LICENTIA_METRICS_TOKEN")
    body = await blocking(request.app.state.metrics.text)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
