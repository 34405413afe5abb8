"""Shared pytest configuration for the whole suite.

The plugin attaches the log tail of every live test broker to a failed test's report.
"""

pytest_plugins = ["tests.support.pytest_plugin"]
