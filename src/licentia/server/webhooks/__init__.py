"""Webhooks: the outbox of events, the vendor's endpoints, and their delivery."""

# The outbox listens to every commit from the moment the context is imported (the
# models are imported wherever a session is: licentia.server.migrations.models).
from licentia.server.webhooks import outbox as outbox
