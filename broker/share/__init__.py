"""KIP-932 share groups ("queues for Kafka"): pure share-partition state, the share group
coordinator, share sessions, the ``__share_group_state`` store and the API handlers."""
