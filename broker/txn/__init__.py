"""The transaction coordinator (KIP-98): a pure state machine (``coordinator.py``) over
per-transactional-id metadata (``metadata.py``, ``state.py``), its log
``__transaction_state`` in Kafka's record format (``log_format.py``, ``persistence.py``),
an asyncio shell that writes transaction markers and runs the timers (``service.py``),
and the Kafka API handlers (``handlers.py``)."""
