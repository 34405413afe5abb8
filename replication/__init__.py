"""Strom replication package."""
