"""Orders and tickets: customers, the ERP's orders, and the tickets they produce."""
