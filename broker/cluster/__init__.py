"""Cluster mode of a Strom node (``controller.quorum.voters`` set): the controller shell,
broker registration and heartbeats, topics and leadership from the metadata image, the
controller listener and request forwarding. See ``broker.cluster.node``."""
