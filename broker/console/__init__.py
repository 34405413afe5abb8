"""The web console: read-only HTML pages about the node's cluster, served by the broker's
aiohttp HTTP server (``broker.metrics_http``) on ``strom.console.address``.

``snapshot`` reads a ``ClusterNode`` into plain values (on the event loop, when a page is
asked for); ``pages`` renders them as HTML (pure); ``routes`` wires the two into aiohttp.
Pages: ``/`` (cluster, quorum, brokers, topics), ``/topics/{name}`` (partitions with
leaders, replicas, ISR, offsets, sizes), ``/groups`` (consumer groups this node
coordinates, with lag per partition).

``remote`` builds the same values over the Kafka protocol (``strom console
--bootstrap-server``, and the broker's own console when an authorizer is on: ``login``
then logs the user in with HTTP Basic, checked by the broker's SASL listener, and asks as
that user). ``actions`` adds POST forms that create or delete a topic and reset a
group's offsets, with a CSRF token, only when enabled (``strom.console.actions.enabled``,
``strom console --enable-actions``); read-only otherwise.
"""
