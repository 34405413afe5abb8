"""Strom's controller: the KRaft-shaped metadata quorum (DESIGN.md section 4).

Pure parts (no I/O, clock or global randomness; ``tests/unit/test_layering.py`` checks):

- ``controller.raft``: the Raft core (``RaftCore``: ``tick``/``step``/``propose``/
  ``ready``/``advance``), one module per role in ``controller.raft.roles``, its messages
  (one per KRaft RPC) and ``controller.raft.wire`` (messages <-> kio entities).
- ``controller.metadata``: metadata records and their encoding, the immutable
  ``MetadataImage`` with ``apply``, snapshots, ``MetadataLoader`` (the state machine fed by
  committed entries), rack-aware placement, ISR leader election, and the active
  controller's decisions (``broker_control``, ``topic_control``, ``elect_leaders``:
  ElectLeaders, the periodic leader rebalance and unclean check).

I/O: ``controller.raft_store.RaftStore`` keeps quorum state, log segments and snapshots.

Shells (asyncio; the loop below, implemented):

- ``controller.quorum.QuorumNode``: the driver of one voter or observer — store + core +
  loader, persist (worker thread) before send, quorum RPCs in and out over
  ``net.client.ClientPool``, image listeners, snapshots every N committed entries,
  ``metadata_lag``; fatal problems (store damage, a foreign voter set) stop the node.
- ``controller.quorum_controller.QuorumController``: the active controller on top of it
  (``ActiveController`` lifecycle, ``decide`` = decide + propose + await commit,
  registration, heartbeats, session-expiry fencing, ElectLeaders, and the periodic leader
  rebalance / unclean-election checks of its driver tick).
- The listeners, broker lifecycle and request forwarding live in ``broker.cluster``
  (they need the broker's handler framework and config rules).

How a shell drives the core (one asyncio task per node; ``controller.quorum``)::

    store = RaftStore.open(dir, cluster_id=..., voters=...)   # refuses bad state
    core = RaftCore(config, random.Random(os.urandom(8)), store.load(), now_ms=now())
    loader = MetadataLoader()          # + load the stored snapshot, if any
    loop:
        wait for: an inbound quorum RPC, a response, a proposal, or core.next_deadline()
        core.tick(now())
        inbound request  -> core.step(wire.from_kio(body, src=, dst=self, correlation_id=))
        inbound response -> core.step(wire.from_kio(...)) (correlation id from the pending
                            request it answers)
        while core.has_ready():
            rd = core.ready()
            await to_thread(store.persist, rd)          # fsync before anything leaves
            if rd.snapshot and rd.snapshot_received: loader.load_snapshot(rd.snapshot)
            loader.apply_entries(rd.committed)          # publish the new image
            for m in rd.messages: send wire.to_kio(m) to m.dst (requests on the node's
                controller connection to m.dst; responses on the connection the request
                came from, matched by correlation id)
            core.advance(rd)
        every N committed entries: core.snapshot_taken(loader.snapshot())

The active controller (``core.is_leader``; ``controller.metadata.active.ActiveController``
created with the offset of its LeaderChange entry, used once ``ready``) turns
BrokerRegistration/BrokerHeartbeat/CreateTopics/DeleteTopics/CreatePartitions/
IncrementalAlterConfigs into records with ``broker_control``/``topic_control`` against
``active.image`` (committed + its own pending batches), proposes them as one
``encode_batch`` entry per request (``offset = core.propose([...])``, then
``active.propose(records, offset, request)``), answers the requests ``active.committed()``
returns after each loader step, and answers NOT_CONTROLLER to ``active.abandon()`` when
leadership is lost. A timer calls ``broker_control.fence_expired`` for brokers that missed
``broker.session.timeout.ms``.
"""
