"""Alembic migrations. ``models`` lists every table so autogenerate sees them all."""
