"""Outbound Kafka-protocol clients (raw wire access for tests, followers, controllers)."""
