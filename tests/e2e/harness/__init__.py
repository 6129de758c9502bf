"""A concurrency harness for seats and counters: real servers, real clients, a checker.

- :mod:`.cluster` starts ``licentia serve`` processes on one database and prepares a
  vendor, a seat pool with a unit counter, and its ``.licred`` credential;
- :mod:`.history` records every HTTP exchange a client makes (invocation time, answer
  time, result) through an httpx transport that also spreads requests round-robin over
  the server processes and can lose answers after the server acted;
- :mod:`.workload` runs the clients (threads, and worker processes via ``python -m``);
- :mod:`.checker` verifies a history against what the server recorded.
"""
