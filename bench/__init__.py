"""Licentia's benchmarks: ``python -m bench`` (``make bench``).

Each figure is measured next to a reference in the same run, so that the ratio says
something even on a busy or slow machine (docs/benchmarks.md lists them all), e.g.:

- signing a license document vs. a raw Ed25519 signature of the same bytes;
- ``GET /api/v1/licenses/{id}`` per second vs. ``GET /healthz`` of the same server;
- seat operations, and online activations through one server process, vs. the bare
  conditional ``UPDATE`` a checkout needs, on PostgreSQL;
- the end user's commands and an application's first check as fresh processes vs.
  processes that only import what they stand on;
- the web fronts' main pages of a vendor with 100,000 licenses vs. ``/healthz`` of
  the same server.

Everything runs on the loopback interface, against servers and databases this run
creates and removes, and each phase is bounded in time. Sections run alone too:
``python -m bench.seats``, ``python -m bench.activations``, ``python -m bench.pages``.
"""
