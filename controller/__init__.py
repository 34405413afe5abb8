"""Strom controller package."""
