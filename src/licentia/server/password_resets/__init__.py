"""Forgotten passwords: a mailed, single-use link that sets a new one."""
