"""Logging in to the web fronts and the API: throttling, and the login use cases."""
