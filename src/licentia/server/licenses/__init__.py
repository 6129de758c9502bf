"""Licenses: instances of templates, their state machine and signed documents."""
