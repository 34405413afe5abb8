"""The Kinesis Data Streams facade (DESIGN.md section 7): a second front door to the same
logs. A stream is a topic, a shard is a partition.

Pure model modules (no asyncio, sockets or clock; times are passed in):
``errors`` (AWS error shapes and status codes), ``hashing`` (MD5 hash-key ranges),
``sequence`` (sequence numbers <-> offsets), ``iterators`` (signed shard iterators),
``metadata`` (the stream document kept in the cluster metadata), ``validation``
(request shapes), ``records`` (Kinesis records <-> Kafka record batches), ``codec``
(AWS JSON 1.1 / CBOR bodies), ``sigv4`` (signature checks).

Shells: ``service`` (the operations, over ``replication.ReplicaManager`` and a
``StreamCluster`` the broker provides) and ``http`` (the aiohttp listener).
"""
