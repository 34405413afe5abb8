"""The table of topic config keys Strom knows: Kafka's names, types, defaults, validators and
the broker properties that set their defaults (``retention.ms`` ← ``log.retention.ms`` /
``log.retention.minutes`` / ``log.retention.hours``, ...). Pure data.
"""

from __future__ import annotations

from common.topics.config_types import (
    LONG_MAX,
    ConfigDef,
    ConfigType,
    InvalidConfig,
    at_least,
    between,
    between_or,
    list_of,
    not_enabled,
    one_of,
    throttled_replicas,
)


def _json_object(name: str, value: object) -> None:
    """empty, or a JSON object"""
    text = str(value).strip()
    if text and not (text.startswith("{") and text.endswith("}")):
        raise InvalidConfig(f"Invalid value {value} for configuration {name}: "
                            f"a JSON object expected")


_MS_PER_MIN = 60_000
_MS_PER_HOUR = 3_600_000
_D = ConfigDef
_T = ConfigType

#: Every topic config key Strom knows, in Kafka's names, with Kafka's defaults.
TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in (
        _D("cleanup.policy", _T.LIST, ("delete",),
           "A string that is either \"delete\" or \"compact\" or both: \"delete\" discards old "
           "segments by time or size; \"compact\" keeps the latest value for each key.",
           (("log.cleanup.policy", 1),), list_of("compact", "delete", allow_empty=False)),
        _D("compression.gzip.level", _T.INT, -1,
           "The level gzip uses when compression.type is gzip (-1: the codec's default).",
           (("compression.gzip.level", 1),), between_or(1, 9, -1)),
        _D("compression.lz4.level", _T.INT, 9,
           "The level lz4 uses when compression.type is lz4.",
           (("compression.lz4.level", 1),), between(1, 17)),
        _D("compression.type", _T.STRING, "producer",
           "Final compression of the topic's data: \"producer\" keeps the codec the producer "
           "used; \"uncompressed\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\" makes the "
           "leader store every batch in that codec, recompressing those that arrive in another "
           "one (KIP-390 levels: compression.<codec>.level).",
           (("compression.type", 1),),
           one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        _D("compression.zstd.level", _T.INT, 3,
           "The level zstd uses when compression.type is zstd.",
           (("compression.zstd.level", 1),), between(-131072, 22)),
        _D("delete.retention.ms", _T.LONG, 86_400_000,
           "How long delete tombstones are kept for compacted topics.",
           (("log.cleaner.delete.retention.ms", 1),), at_least(0)),
        _D("file.delete.delay.ms", _T.LONG, 60_000,
           "How long to wait before deleting a file from the filesystem.",
           (("log.segment.delete.delay.ms", 1),), at_least(0)),
        _D("flush.messages", _T.LONG, LONG_MAX,
           "Force an fsync of the log after this many messages (default: leave it to the OS; "
           "durability comes from replication).",
           (("log.flush.interval.messages", 1),), at_least(1)),
        _D("flush.ms", _T.LONG, LONG_MAX,
           "Force an fsync of the log when data is older than this many milliseconds.",
           (("log.flush.interval.ms", 1),), at_least(0)),
        _D("follower.replication.throttled.replicas", _T.LIST, (),
           "Replicas whose replication is throttled on the follower side (accepted, not used "
           "on one node).", (), throttled_replicas),
        _D("index.interval.bytes", _T.INT, 4096,
           "How many log bytes between entries of the sparse offset index.",
           (("log.index.interval.bytes", 1),), at_least(0)),
        _D("kinesis.stream", _T.STRING, "",
           "Strom's Kinesis facade: the stream document of the topic (JSON: shard hash-key "
           "ranges, lineage, stream mode, tags), written by the Kinesis API; empty for a "
           "topic made by a Kafka client (a stream whose partitions split the hash-key "
           "space uniformly). Not meant to be edited by hand.", (), _json_object),
        _D("leader.replication.throttled.replicas", _T.LIST, (),
           "Replicas whose replication is throttled on the leader side (accepted, not used "
           "on one node).", (), throttled_replicas),
        _D("local.retention.bytes", _T.LONG, -2,
           "Tiered storage local retention in bytes (-2: use retention.bytes). Strom has no "
           "tiered storage; accepted for compatibility.",
           (("log.local.retention.bytes", 1),), at_least(-2)),
        _D("local.retention.ms", _T.LONG, -2,
           "Tiered storage local retention in ms (-2: use retention.ms). Strom has no tiered "
           "storage; accepted for compatibility.",
           (("log.local.retention.ms", 1),), at_least(-2)),
        _D("max.compaction.lag.ms", _T.LONG, LONG_MAX,
           "The longest time a message stays ineligible for compaction.",
           (("log.cleaner.max.compaction.lag.ms", 1),), at_least(1)),
        _D("max.message.bytes", _T.INT, 1_048_588,
           "The largest record batch size allowed (after compression).",
           (("message.max.bytes", 1),), at_least(0)),
        _D("message.timestamp.after.max.ms", _T.LONG, LONG_MAX,
           "How far in the future a record's timestamp may be (CreateTime only).",
           (("log.message.timestamp.after.max.ms", 1),), at_least(0)),
        _D("message.timestamp.before.max.ms", _T.LONG, LONG_MAX,
           "How far in the past a record's timestamp may be (CreateTime only).",
           (("log.message.timestamp.before.max.ms", 1),), at_least(0)),
        _D("message.timestamp.difference.max.ms", _T.LONG, LONG_MAX,
           "Deprecated (Kafka 3.6): largest allowed difference between a record's CreateTime "
           "and the broker's clock; see message.timestamp.before/after.max.ms.",
           (("log.message.timestamp.difference.max.ms", 1),), at_least(0)),
        _D("message.timestamp.type", _T.STRING, "CreateTime",
           "Whether a record's timestamp is the producer's (CreateTime) or the broker's "
           "append time (LogAppendTime).",
           (("log.message.timestamp.type", 1),), one_of("CreateTime", "LogAppendTime")),
        _D("min.cleanable.dirty.ratio", _T.DOUBLE, 0.5,
           "Minimum ratio of dirty log to total log for the log to be compacted.",
           (("log.cleaner.min.cleanable.ratio", 1),), between(0, 1)),
        _D("min.compaction.lag.ms", _T.LONG, 0,
           "The minimum time a message stays uncompacted in the log.",
           (("log.cleaner.min.compaction.lag.ms", 1),), at_least(0)),
        _D("min.insync.replicas", _T.INT, 1,
           "With acks=all, the minimum number of in-sync replicas that must acknowledge a "
           "write (NOT_ENOUGH_REPLICAS otherwise).",
           (("min.insync.replicas", 1),), at_least(1)),
        _D("preallocate", _T.BOOLEAN, False,
           "Preallocate the file on disk when creating a new log segment.",
           (("log.preallocate", 1),)),
        _D("remote.storage.enable", _T.BOOLEAN, False,
           "Tiered storage; Strom has none, so only false is accepted.", (), not_enabled),
        _D("retention.bytes", _T.LONG, -1,
           "The maximum size a partition's log may grow to before old segments are discarded "
           "(-1: no limit).",
           (("log.retention.bytes", 1),)),
        _D("retention.ms", _T.LONG, 604_800_000,
           "How long a log segment is kept before it is discarded (-1: no time limit).",
           (("log.retention.ms", 1), ("log.retention.minutes", _MS_PER_MIN),
            ("log.retention.hours", _MS_PER_HOUR)), at_least(-1)),
        _D("segment.bytes", _T.INT, 1_073_741_824,
           "The segment file size for the log.",
           (("log.segment.bytes", 1),), at_least(14)),
        _D("segment.index.bytes", _T.INT, 10_485_760,
           "The size of the index that maps offsets to file positions.",
           (("log.index.size.max.bytes", 1),), at_least(4)),
        _D("segment.jitter.ms", _T.LONG, 0,
           "The maximum random jitter subtracted from segment.ms.",
           (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", _MS_PER_HOUR)), at_least(0)),
        _D("segment.ms", _T.LONG, 604_800_000,
           "Roll a new segment after this time even if the current one is not full.",
           (("log.roll.ms", 1), ("log.roll.hours", _MS_PER_HOUR)), at_least(1)),
        _D("unclean.leader.election.enable", _T.BOOLEAN, False,
           "Whether replicas outside the ISR may be elected leader as a last resort.",
           (("unclean.leader.election.enable", 1),)),
    )
}

#: Broker property → the topic key it is the default for (every synonym).
BROKER_SYNONYM_OF: dict[str, str] = {
    broker_key: d.name for d in TOPIC_CONFIGS.values() for broker_key, _ in d.synonyms
}


def config_def(name: str) -> ConfigDef:
    """The definition of topic config ``name``; InvalidConfig for unknown names."""
    try:
        return TOPIC_CONFIGS[name]
    except KeyError:
        raise InvalidConfig(f"Unknown topic config name: {name}") from None
