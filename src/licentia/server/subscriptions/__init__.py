"""Subscriptions: licenses renewed one paid period at a time."""
