"""Licentia's benchmarks: ``python -m bench`` (``make bench``).

Three figures, each measured next to a reference in the same run so that the ratio
says something even on a busy or slow machine:

- signing a license document vs. a raw Ed25519 signature of the same bytes;
- single-line orders per second through the HTTP API of a real server process, on
  SQLite and on PostgreSQL;
- ``GET /api/v1/licenses/{id}`` per second vs. ``GET /healthz`` of the same server.

Everything runs on the loopback interface, against servers and databases this run
creates and removes, and each phase is bounded in time.
"""
