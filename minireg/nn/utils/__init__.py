"""Utilities: gradient clipping."""
