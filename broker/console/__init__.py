"""The web console: read-only HTML pages about the node's cluster, served by the broker's
aiohttp HTTP server (``broker.metrics_http``) on ``strom.console.address``.

``snapshot`` reads a ``ClusterNode`` into plain values (on the event loop, when a page is
asked for); ``pages`` renders them as HTML (pure); ``routes`` wires the two into aiohttp.
Pages: ``/`` (cluster, quorum, brokers, topics), ``/topics/{name}`` (partitions with
leaders, replicas, ISR, offsets, sizes), ``/groups`` (consumer groups this node
coordinates, with lag per partition). Nothing on them changes the cluster.
"""
