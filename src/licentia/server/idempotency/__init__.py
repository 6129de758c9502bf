"""Idempotency: replaying a creating request with the same key replays its answer."""
