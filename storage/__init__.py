"""Strom storage package."""
