"""Storage plumbing: engines, sessions, the declarative base, schema checks."""
