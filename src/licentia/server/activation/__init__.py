"""Activation: binding licenses to devices online or by file, syncs and returns."""
