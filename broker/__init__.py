"""Strom broker package."""
