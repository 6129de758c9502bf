"""The HTTP API: thin translation between HTTP and the services."""

from licentia.server.api.app import create_app

__all__ = ["create_app"]
