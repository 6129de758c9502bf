"""License Central: the server. Bounded contexts below, HTTP in ``api``."""
