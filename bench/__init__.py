"""Strom bench package."""
