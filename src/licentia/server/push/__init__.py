"""Push updates: telling an online device at once that its licenses changed.

``changes`` learns of the changes from the transactions that make them, ``hub`` keeps
the open streams of one process, ``postgres`` carries changes between nodes, and
``calls`` opens a device's or a cloud container's stream (docs/architecture.md).
``changes`` listens to every commit once imported, as the webhook outbox does: the
models' module (``licentia.server.migrations.models``) imports it wherever a session is.
"""
