"""BrokerConfig: Kafka property names, precedence file < env < overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import (
    BrokerConfig,
    ConfigError,
    explicit_properties,
    load_config,
    parse_listeners,
    parse_properties,
)


def test_defaults_are_safe_for_one_node() -> None:
    config, unknown = load_config(environ={})
    assert config.node_id == 1
    assert config.listener_list[0].host == "127.0.0.1"
    assert config.socket_request_max_bytes == 100 * 1024 * 1024
    assert config.auto_create_topics_enable is True
    assert config.retention_ms == 7 * 24 * 3600 * 1000
    assert unknown == {}


def test_precedence_file_env_override(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(
        "# comment\nnum.partitions=2\nlog.retention.ms = 1000\n"
        "log.segment.bytes: 4096\nlisteners=PLAINTEXT://127.0.0.1:9999\n"
    )
    config, _ = load_config(
        props,
        ["log.retention.ms=3000"],
        environ={"STROM_NUM_PARTITIONS": "5", "STROM_LOG_RETENTION_MS": "2000"},
    )
    assert config.num_partitions == 5  # env beats file
    assert config.retention_ms == 3000  # override beats env
    assert config.log_segment_bytes == 4096  # file value kept
    assert config.listener_list[0].port == 9999
    assert config.log_config().retention_ms == 3000
    explicit = explicit_properties(config)
    assert explicit["num.partitions"] == 5 and "message.max.bytes" not in explicit


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("num.partitions=0", "num.partitions"),
        ("num.partitions=many", "num.partitions"),
        ("listeners=localhost:9092", "listeners"),
        ("log.message.timestamp.type=WallTime", "log.message.timestamp.type"),
        ("auto.create.topics.enable=maybe", "auto.create.topics.enable"),
        ("socket.request.max.bytes=-5", "socket.request.max.bytes"),
        ("log.cleanup.policy=shred", "log.cleanup.policy"),
    ],
)
def test_invalid_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override], environ={})


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["no-equals-sign"], environ={})


def test_unknown_properties_are_reported_not_fatal() -> None:
    _, unknown = load_config(None, ["some.future.setting=1"], environ={})
    assert unknown == {"some.future.setting": "1"}


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.properties", environ={})


def test_properties_parser_continuations_and_separators() -> None:
    text = "a=1\n! bang comment\nb : two words\nc=x\\\n  y\nd\n"
    assert parse_properties(text) == {"a": "1", "b": "two words", "c": "xy", "d": ""}


def test_listener_parsing() -> None:
    (one,) = parse_listeners("plaintext://[::1]:0")
    assert (one.name, one.host, one.port) == ("PLAINTEXT", "::1", 0)
    with pytest.raises(ValueError):
        parse_listeners("PLAINTEXT://host:70000")


def test_retention_units() -> None:
    assert BrokerConfig(log_retention_hours=1).retention_ms == 3_600_000
    assert BrokerConfig(log_retention_minutes=2).retention_ms == 120_000
    assert BrokerConfig(log_retention_ms=-1).retention_ms == -1


def test_topic_default_rules_apply_to_broker_properties() -> None:
    """log.segment.bytes is the default of segment.bytes: Kafka's topic minimum applies."""
    with pytest.raises(ConfigError, match=r"log\.segment\.bytes"):
        load_config(None, ["log.segment.bytes=10"], environ={})


MAP = "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (["max.connections.per.ip.overrides=10.0.0.1"], "'10.0.0.1' is not host:count"),
        (["queued.max.request.bytes=0"], "must be -1 \\(unbounded\\) or > 0"),
        (["listeners=SASL_PLAINTEXT://:9093"], "Strom authenticates with PLAIN, SCRAM-SHA-256, "
                                               "SCRAM-SHA-512; got GSSAPI"),
        (["listeners=SASL_PLAINTEXT://:9093", "sasl.enabled.mechanisms=PLAIN"],
         "listener.name.sasl_plaintext.plain.sasl.jaas.config is required"),
        (["listeners=SASL_PLAINTEXT://:9093", "sasl.enabled.mechanisms=PLAIN",
          "listener.name.sasl_plaintext.plain.sasl.jaas.config=user_a=\"secret\";"],
         "expected 'org.apache.kafka.common.security.plain.PlainLoginModule required"),
        (["listeners=PLAINTEXT://:9092,EXTERNAL://:9093"],
         "listener EXTERNAL has no entry in listener.security.protocol.map"),
        (["listeners=PLAINTEXT://:9092,PLAINTEXT://:9093"], "PLAINTEXT is used more than once"),
        (["listeners=PLAINTEXT://:9092,EXTERNAL://:9092", MAP], "port 9092 is used by more"),
        (["advertised.listeners=EXTERNAL://h:1"], "EXTERNAL is not a listener in listeners"),
        (["listeners=PLAINTEXT://:9092,CONTROLLER://:9093", "advertised.listeners=CONTROLLER://h:1"],
         "must not contain the controller listener CONTROLLER"),
        (["listener.security.protocol.map=PLAINTEXT"], "is not NAME:PROTOCOL"),
        (["listener.security.protocol.map=PLAINTEXT:TLS"], "is not NAME:PROTOCOL"),
        (["log.dirs=/a,/b"], "one directory .* got 2: /a, /b"),
        (["strom.metrics.address=nope"], "'nope' is not host:port"),
    ],
)
def test_listener_and_log_dir_rules(overrides: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(None, overrides, environ={})


def test_a_listener_left_out_of_advertised_listeners_advertises_itself() -> None:
    config, _ = load_config(None, ["listeners=PLAINTEXT://0.0.0.0:9092,EXTERNAL://:29092", MAP,
                                   "advertised.listeners=EXTERNAL://localhost:29092"],
                            environ={})
    assert [str(li) for li in config.advertised_listener_list] == [
        "EXTERNAL://localhost:29092", "PLAINTEXT://0.0.0.0:9092"]


def test_jaas_passwords_are_never_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["listeners=SASL_PLAINTEXT://:9093", "sasl.enabled.mechanisms=PLAIN",
                           "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                           "bogus user_a=\"topsecret\";"], environ={})
    assert "topsecret" not in str(err.value)


def test_plain_tokens_and_jaas_users() -> None:
    from broker.sasl import authenticate_plain, parse_jaas_users

    users = parse_jaas_users(
        'org.apache.kafka.common.security.plain.PlainLoginModule required\n'
        '  username="admin" password="x" user_alice="a\\\\b\\"c" user_bob="";')
    assert users == {"alice": 'a\\b"c', "bob": ""}
    assert authenticate_plain(b'\0alice\0a\\b"c', users) == "alice"
    assert authenticate_plain(b'alice\0alice\0a\\b"c', users) == "alice"
    for bad in (b'bob\0alice\0a\\b"c', b"\0alice\0wrong", b"\0carol\0x", b"\0alice",
                b"\0\0", b"\0\xff\0x", b'\0alice\0a\\b"c\0extra'):
        assert authenticate_plain(bad, users) is None, bad


def test_compression_defaults_reach_the_topic_defaults() -> None:
    from broker.topics import BrokerDefaults

    config, unknown = load_config(overrides=["compression.type=zstd",
                                             "compression.zstd.level=9"], environ={})
    assert unknown == {}
    props = BrokerDefaults.from_broker_config(config).explicit
    assert props["compression.type"] == "zstd" and str(props["compression.zstd.level"]) == "9"
    for bad in ("compression.type=brotli", "compression.zstd.level=99"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(overrides=[bad], environ={})
