"""Counters: pay-per-use units with an append-only ledger."""
