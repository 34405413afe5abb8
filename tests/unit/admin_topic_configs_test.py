"""Topic names and topic configs: Kafka's rules, defaults, sources and LogConfig mapping."""

from __future__ import annotations

import pytest

from common.topics.configs import (
    LONG_MAX,
    TOPIC_CONFIGS,
    BrokerDefaults,
    ConfigSource,
    ConfigType,
    InvalidConfig,
    apply_incremental,
    describe_topic,
    effective_values,
    normalize_overrides,
    not_applied,
    to_log_config_kwargs,
    validate_effective,
)
from common.topics.names import InvalidTopicName, find_collision, validate_topic_name
from storage.log_config import LogConfig


@pytest.mark.parametrize("name", ["a", "orders", "a.b_c-D9", "x" * 249, "__consumer_offsets"])
def test_legal_topic_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        (None, "empty"),
        (".", '"." or ".."'),
        ("..", '"." or ".."'),
        ("x" * 250, "longer than 249"),
        ("bad name", "illegal"),
        ("bad/name", "illegal"),
        ("ünïcode", "illegal"),
    ],
)
def test_illegal_topic_names(name: str | None, fragment: str) -> None:
    with pytest.raises(InvalidTopicName, match=fragment.replace(".", r"\.")):
        validate_topic_name(name)


def test_collision_of_dot_and_underscore() -> None:
    assert find_collision("a.b", ["a_b", "c"]) == "a_b"
    assert find_collision("a_b", ["a.b"]) == "a.b"
    assert find_collision("a_b", ["a_b"]) is None  # itself is no collision
    assert find_collision("ab", ["a_b"]) is None


def test_parse_and_render_each_type() -> None:
    assert TOPIC_CONFIGS["retention.ms"].parse(" 1000 ") == 1000
    assert TOPIC_CONFIGS["preallocate"].parse("TRUE") is True
    assert TOPIC_CONFIGS["min.cleanable.dirty.ratio"].parse("0.25") == 0.25
    policy = TOPIC_CONFIGS["cleanup.policy"]
    assert policy.parse("compact, delete") == ("compact", "delete")
    assert policy.render(("compact", "delete")) == "compact,delete"
    assert normalize_overrides({"cleanup.policy": "compact , delete"}) == {
        "cleanup.policy": "compact,delete"
    }


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("retention.ms", "abc", "Not a number of type LONG"),
        ("retention.ms", "1_000", "Not a number of type LONG"),
        ("retention.ms", "-2", "at least -1"),
        ("segment.bytes", "10", "at least 14"),
        ("segment.bytes", str(2**31), "Not a number of type INT"),
        ("max.message.bytes", "-1", "at least 0"),
        ("cleanup.policy", "forever", "String must be one of: compact, delete"),
        ("cleanup.policy", "", "at least one of"),
        ("message.timestamp.type", "WallTime", "CreateTime, LogAppendTime"),
        ("min.insync.replicas", "0", "at least 1"),
        ("min.cleanable.dirty.ratio", "1.5", "between 0 and 1"),
        ("preallocate", "yes", "true or false"),
        ("remote.storage.enable", "true", "tiered storage"),
        ("no.such.config", "1", "Unknown topic config name: no.such.config"),
        ("retention.ms", None, "Null value"),
        ("follower.replication.throttled.replicas", "0-1", "literal"),
        ("compression.type", "brotli", "uncompressed, zstd, lz4, snappy, gzip, producer"),
        ("compression.gzip.level", "0", "between 1 and 9 or -1"),
        ("compression.gzip.level", "10", "between 1 and 9 or -1"),
        ("compression.lz4.level", "18", "between 1 and 17"),
        ("compression.zstd.level", "23", "between -131072 and 22"),
        ("compression.zstd.level", "-131073", "between -131072 and 22"),
    ],
)
def test_invalid_values_name_the_key(key: str, value: str | None, fragment: str) -> None:
    with pytest.raises(InvalidConfig, match=fragment):
        normalize_overrides({key: value})


def test_cross_key_rules() -> None:
    broker = BrokerDefaults()
    with pytest.raises(InvalidConfig, match="min.compaction.lag.ms"):
        validate_effective(
            {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, broker
        )
    for codec in ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"):
        validate_effective({"compression.type": codec}, broker)


def test_broker_properties_are_topic_defaults_with_unit_conversion() -> None:
    broker = BrokerDefaults.from_properties(
        {"log.retention.hours": "2", "message.max.bytes": 2000, "num.partitions": "3",
         "log.cleanup.policy": "compact", "unrelated.key": "x"}
    )
    assert broker.num_partitions == 3
    values = effective_values({}, broker)
    assert values["retention.ms"] == 2 * 3_600_000
    assert values["max.message.bytes"] == 2000
    assert values["cleanup.policy"] == ("compact",)
    assert values["segment.bytes"] == 1 << 30
    # log.retention.ms outranks log.retention.hours, as in Kafka
    both = BrokerDefaults.from_properties({"log.retention.hours": "2", "log.retention.ms": "5"})
    assert effective_values({}, both)["retention.ms"] == 5
    assert effective_values({}, BrokerDefaults.from_properties({"log.retention.ms": "-1"}))[
        "retention.ms"
    ] == -1


def test_invalid_broker_property_is_refused() -> None:
    with pytest.raises(InvalidConfig, match="log.segment.bytes|segment.bytes"):
        BrokerDefaults.from_properties({"log.segment.bytes": "nope"})
    with pytest.raises(InvalidConfig, match="num.partitions"):
        BrokerDefaults.from_properties({"num.partitions": "0"})


def test_describe_sources_and_synonyms() -> None:
    broker = BrokerDefaults.from_properties({"log.retention.ms": "5000"})
    described = {
        d.name: d for d in describe_topic({"segment.bytes": "1048576"}, broker)
    }
    assert set(described) == set(TOPIC_CONFIGS)
    seg = described["segment.bytes"]
    assert (seg.value, seg.source) == ("1048576", ConfigSource.TOPIC_CONFIG)
    assert seg.type is ConfigType.INT
    assert [(s.name, s.source) for s in seg.synonyms] == [
        ("segment.bytes", ConfigSource.TOPIC_CONFIG),
        ("log.segment.bytes", ConfigSource.DEFAULT_CONFIG),
    ]
    ret = described["retention.ms"]
    assert (ret.value, ret.source) == ("5000", ConfigSource.STATIC_BROKER_CONFIG)
    assert ret.synonyms[0].name == "log.retention.ms"
    assert ret.synonyms[-1].source is ConfigSource.DEFAULT_CONFIG
    policy = described["cleanup.policy"]
    assert (policy.value, policy.source, policy.is_default) == (
        "delete", ConfigSource.DEFAULT_CONFIG, True,
    )
    assert policy.documentation
    only = describe_topic({}, broker, ["retention.ms", "bogus"])
    assert [d.name for d in only] == ["retention.ms"]


def test_compression_configs_reach_the_log_config_and_describe() -> None:
    """KIP-390: every codec and level is accepted, described with its broker synonym,
    and carried into storage's LogConfig; the broker property is the topic default."""
    broker = BrokerDefaults.from_properties({"compression.type": "zstd"})
    fields = LogConfig.__dataclass_fields__
    config = LogConfig(**to_log_config_kwargs(effective_values({}, broker), fields))
    assert (config.compression_type, config.target_codec, config.target_level) == ("zstd", 4, 3)
    overrides = normalize_overrides({"compression.type": "lz4", "compression.lz4.level": 12,
                                     "compression.gzip.level": "-1"})
    config = LogConfig(**to_log_config_kwargs(effective_values(overrides, broker), fields))
    assert (config.target_codec, config.target_level, config.compression_gzip_level) == (
        3, 12, -1)
    described = {d.name: d for d in describe_topic(overrides, broker)}
    ctype = described["compression.type"]
    assert (ctype.value, ctype.source) == ("lz4", ConfigSource.TOPIC_CONFIG)
    assert [(s.name, s.value, s.source) for s in ctype.synonyms] == [
        ("compression.type", "lz4", ConfigSource.TOPIC_CONFIG),
        ("compression.type", "zstd", ConfigSource.STATIC_BROKER_CONFIG),
        ("compression.type", "producer", ConfigSource.DEFAULT_CONFIG),
    ]
    zstd = described["compression.zstd.level"]
    assert (zstd.value, zstd.source, zstd.type) == ("3", ConfigSource.DEFAULT_CONFIG,
                                                    ConfigType.INT)
    assert "not apply" not in (ctype.documentation or "")
    unapplied = not_applied(fields)
    assert not {"compression.type", "compression.gzip.level", "compression.lz4.level",
                "compression.zstd.level"} & unapplied


def test_incremental_ops() -> None:
    broker = BrokerDefaults()
    assert apply_incremental({}, [("cleanup.policy", 2, "compact")], broker) == {
        "cleanup.policy": "delete,compact"
    }
    assert apply_incremental(
        {"cleanup.policy": "delete,compact"}, [("cleanup.policy", 3, "delete")], broker
    ) == {"cleanup.policy": "compact"}
    assert apply_incremental({"retention.ms": "5"}, [("retention.ms", 1, None)], broker) == {}
    assert apply_incremental({}, [("retention.ms", 0, "77")], broker) == {"retention.ms": "77"}
    with pytest.raises(InvalidConfig, match="append/subtract is not allowed"):
        apply_incremental({}, [("retention.ms", 2, "1")], broker)
    with pytest.raises(InvalidConfig, match="at least one of"):
        apply_incremental({}, [("cleanup.policy", 3, "delete")], broker)
    with pytest.raises(InvalidConfig, match="duplicate"):
        apply_incremental({}, [("retention.ms", 0, "1"), ("retention.ms", 0, "2")], broker)
    with pytest.raises(InvalidConfig, match="Unknown config operation"):
        apply_incremental({}, [("retention.ms", 9, "1")], broker)


def test_log_config_mapping() -> None:
    broker = BrokerDefaults.from_properties({"log.segment.bytes": "4096"})
    values = effective_values(
        {"cleanup.policy": "compact,delete", "retention.ms": "-1",
         "message.timestamp.type": "LogAppendTime", "max.message.bytes": "100"},
        broker,
    )
    fields = LogConfig.__dataclass_fields__
    config = LogConfig(**to_log_config_kwargs(values, fields))
    assert config.cleanup_policy == frozenset({"compact", "delete"})
    assert config.retention_ms == -1
    assert config.segment_bytes == 4096
    assert config.message_timestamp_type == "LogAppendTime"
    assert config.max_message_bytes == 100
    assert config.flush_messages == LONG_MAX
    # defaults match storage's own defaults when nothing is set
    assert LogConfig(**to_log_config_kwargs(effective_values({}, BrokerDefaults()), fields)) == (
        LogConfig()
    )
