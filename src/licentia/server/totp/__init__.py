"""A second factor for vendor staff: time-based one-time codes (RFC 6238) and
single-use recovery codes."""
