"""The operator's and the vendor's commands: they need License Central's code (the
``server`` extra) and, most of them, its database. ``licentia.cli.main`` names them
lazily (``licentia.cli.lazy``), so that nothing here is imported for the end user's
commands or for ``licentia --help``."""
