"""Test support code shared by the integration and end-to-end suites (owned by the clients helper).

- ``broker``: :class:`BrokerProcess`, a real broker subprocess (``python -m broker serve``).
- ``fixtures``: pytest fixtures around it (module broker, per-test broker, broker factory,
  unique topic names); re-exported by ``tests/integration/conftest.py``.
- ``pytest_plugin``: attaches the tail of every live broker's log to a failed test's report.
"""
