"""Integration tests: real clients against a real broker subprocess on 127.0.0.1.

Fixtures (see ``tests/support/fixtures.py``): ``broker`` (one per module), ``bootstrap``,
``fresh_broker`` (one per test), ``broker_factory``, ``topic_name``.  Failed tests get
the broker log attached (``tests/support/pytest_plugin.py``, registered by the root
``tests/conftest.py``).
"""

from tests.support.fixtures import (  # noqa: F401 - fixtures are found by name
    bootstrap,
    broker,
    broker_factory,
    fresh_broker,
    topic_name,
)
