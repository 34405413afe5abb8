"""Strom common package."""
