"""What the tests need to run Licentia for real: server processes and databases."""
