"""The Kinesis Data Streams facade (DESIGN.md section 7): a second front door to the same
logs. A stream is a topic, a shard is a partition.

Pure model modules (no asyncio, sockets or clock; times are passed in):
``errors`` (AWS error shapes and status codes), ``hashing`` (MD5 hash-key ranges),
``sequence`` (sequence numbers <-> offsets), ``iterators`` (signed shard iterators),
``eventstream`` (SubscribeToShard's framing), ``metadata`` (the stream document kept in
the cluster metadata), ``validation`` (request shapes), ``records`` (Kinesis records <->
Kafka record batches), ``codec`` (AWS JSON 1.1 / CBOR bodies), ``sigv4`` (signature
checks), ``cluster`` (what the broker provides).

Shells: ``service`` (every operation by name, over ``replication.ReplicaManager`` and a
``StreamCluster`` the broker provides), composed of ``ops_streams``, ``ops_records``,
``ops_reshard`` and ``ops_consumers`` over ``core`` (shared lookups, leadership,
serialized stream-document writes), and ``http`` (the aiohttp listener, forwarding).
"""
