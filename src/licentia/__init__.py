"""Licentia: open-source cloud license management."""

__version__ = "0.1.0"
