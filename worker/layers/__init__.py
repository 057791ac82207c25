"""Reusable layers (quantised linears)."""
