"""The ``licentia`` command: thin translation between the terminal and the services."""
