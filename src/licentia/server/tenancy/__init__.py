"""Tenancy: vendors, their staff (users with roles) and API keys."""
