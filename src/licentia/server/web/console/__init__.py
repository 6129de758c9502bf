"""The vendor console at ``/console/``: vendor staff log in with their users and roles."""
