"""Seats: concurrent use of a seat-pool license, with leases, heartbeats and borrowing."""
