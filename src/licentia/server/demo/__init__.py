"""Demo data a newcomer can click through: one vendor with a small catalog and an order."""
