"""Catalog: products, their features, and license templates (SKUs)."""
