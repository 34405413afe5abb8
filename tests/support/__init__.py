"""Test support code shared by the integration and end-to-end suites (owned by the clients helper).

- ``broker``: :class:`BrokerProcess`, a real broker subprocess (``python -m broker serve``).
- ``fixtures``: pytest fixtures around it (module broker, per-test broker, broker factory,
  unique topic names); re-exported by ``tests/integration/conftest.py``.
- ``pytest_plugin``: attaches the tail of every live broker's log to a failed test's report
  (registered by the root ``tests/conftest.py``).
- ``kafka_proxy``: a Kafka-frame-aware TCP proxy that can swallow responses (forces client
  retries) and counts connections the broker closed.
- ``raw_producer``: hand-built idempotent batches over aiokafka's low-level client.
- ``kafkajs``: installs kafkajs on first use and runs small node programs.
- ``metered_broker``: a module's broker with a metrics address, and its /metrics text.
- ``polling``: bounded waits (``wait_for``) and read-until-quiet consumer loops.
- ``stable_offsets``: a partition's last stable and log end offsets (ListOffsets).
"""
