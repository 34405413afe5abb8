"""Strom protocol package."""
