"""Devices: the device containers that hold offline licenses, their flags and history."""
