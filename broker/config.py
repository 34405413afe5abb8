"""Broker configuration: Kafka's property names, validated by pydantic-settings.

Sources, lowest to highest precedence:

1. defaults (safe for one node on 127.0.0.1),
2. a Java-style properties file (``strom serve --config server.properties``),
3. ``STROM_*`` environment variables (property name upper-cased, dots → underscores:
   ``log.dirs`` ↔ ``STROM_LOG_DIRS``),
4. ``--override key=value`` flags.

Fields are the property names with dots replaced by underscores (``log.dirs`` →
``log_dirs``). An invalid value raises ``ConfigError`` whose message names the Kafka
property. Unknown properties are kept in ``unknown`` (Kafka logs and ignores them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.sasl import MECHANISM, JaasError, parse_jaas_users
from common.security.acl import parse_super_users
from common.security.scram import parse_add_scram
from storage.log_config import LogConfig

#: the SASL mechanisms Strom serves (``broker.security.authenticator``)
SASL_MECHANISMS = (MECHANISM, "SCRAM-SHA-256", "SCRAM-SHA-512")
#: ``authorizer.class.name`` of KRaft Kafka's ACL authorizer (``broker.security.authz``)
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

ENV_PREFIX = "STROM_"
_LISTENER = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)://(?P<host>\[[^\]]*\]|[^:]*):(?P<port>\d+)$")
LONG_MAX = 2**63 - 1


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the Kafka property."""


@dataclass(frozen=True, slots=True)
class Listener:
    """One entry of ``listeners`` / ``advertised.listeners``: NAME://host:port."""

    name: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.name}://{self.host}:{self.port}"


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; empty host: every interface) → (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def parse_protocol_map(value: str) -> dict[str, str]:
    """``listener.security.protocol.map`` (``NAME:PROTOCOL,...``) → {NAME: PROTOCOL}."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name, sep, protocol = part.partition(":")
        name, protocol = name.strip().upper(), protocol.strip().upper()
        if not sep or not name or protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"{part!r} is not NAME:PROTOCOL with PROTOCOL one of "
                             f"{', '.join(SECURITY_PROTOCOLS)}")
        out[name] = protocol
    return out


def check_listeners(listeners: list[Listener], advertised: list[Listener],
                    protocols: Mapping[str, str], controller_names: set[str]) -> None:
    """Kafka's rules for ``listeners``/``advertised.listeners``; raises ValueError naming
    the property (an SSL listener's key material is checked by ``broker.tls`` at startup)."""
    names = [li.name for li in listeners]
    for name in sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"listeners: listener name {name} is used more than once")
    ports = [li.port for li in listeners if li.port]
    for port in sorted({p for p in ports if ports.count(p) > 1}):
        raise ValueError(f"listeners: port {port} is used by more than one listener")
    for li in listeners:
        protocol = protocols.get(li.name)
        if protocol is None:
            raise ValueError(f"listeners: listener {li.name} has no entry in "
                             f"listener.security.protocol.map")
    for li in advertised:
        if li.name not in names:
            raise ValueError(f"advertised.listeners: {li.name} is not a listener in "
                             f"listeners ({', '.join(names)})")
        if li.name in controller_names:
            raise ValueError(f"advertised.listeners must not contain the controller "
                             f"listener {li.name}")


def parse_ip_overrides(value: str) -> dict[str, int]:
    """``max.connections.per.ip.overrides`` (``host:count,...``; IPv6 as ``[::1]:5``) →
    {host: count}."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        host, sep, count = part.rpartition(":")
        if not sep or not host or not count.strip().isdigit():
            raise ValueError(f"{part!r} is not host:count")
        out[host.strip().strip("[]")] = int(count)
    return out


def parse_listeners(value: str) -> list[Listener]:
    """Parse a comma-separated listener list; raises ValueError on a bad entry."""
    out = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        m = _LISTENER.match(part)
        if not m:
            raise ValueError(f"{part!r} is not NAME://host:port")
        port = int(m["port"])
        if port > 65535:
            raise ValueError(f"port {port} out of range")
        out.append(Listener(m["name"].upper(), m["host"].strip("[]"), port))
    if not out:
        raise ValueError("no listener given")
    return out


def property_name(field_name: str) -> str:
    """``log_dirs`` → ``log.dirs``."""
    return field_name.replace("_", ".")


def field_name(prop: str) -> str:
    """``log.dirs`` → ``log_dirs``."""
    return prop.strip().replace(".", "_").replace("-", "_").lower()


#: the parser that checks each optional structured property
_PARSERS: dict[str, Callable[[str], object]] = {
    "advertised_listeners": parse_listeners,
    "strom_metrics_address": parse_address,
    "strom_console_address": parse_address,
    "listener_security_protocol_map": parse_protocol_map,
}


class BrokerConfig(BaseSettings):
    """All broker settings. Field ``a_b_c`` is Kafka property ``a.b.c``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore", validate_default=True
    )

    # identity and roles
    node_id: int = 1
    broker_id: int | None = None
    process_roles: str = "broker,controller"
    cluster_id: str | None = None
    #: empty: a one-voter quorum of this node alone (see broker.cluster.node)
    controller_quorum_voters: str = ""
    controller_listener_names: str = "CONTROLLER"
    # the metadata quorum and broker lifecycle (see broker.cluster)
    controller_quorum_election_timeout_ms: int = 1000
    controller_quorum_fetch_timeout_ms: int = 2000
    controller_quorum_request_timeout_ms: int = 2000
    broker_session_timeout_ms: int = 9000
    broker_heartbeat_interval_ms: int = 2000
    broker_rack: str | None = None
    # leader elections by the active controller (see controller.metadata.elect_leaders)
    #: the default for topics without their own unclean.leader.election.enable
    unclean_leader_election_enable: bool = False
    unclean_leader_election_interval_ms: int = 300_000
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_check_interval_seconds: int = 300
    leader_imbalance_per_broker_percentage: int = 10

    # network
    listeners: str = "PLAINTEXT://127.0.0.1:9092"
    advertised_listeners: str | None = None
    #: listener name -> security protocol (Kafka's default map); Strom serves PLAINTEXT only
    listener_security_protocol_map: str = (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
        "SASL_SSL:SASL_SSL")
    #: SASL mechanisms of SASL listeners (Kafka's default GSSAPI; Strom: PLAIN,
    #: SCRAM-SHA-256, SCRAM-SHA-512)
    sasl_enabled_mechanisms: str = "GSSAPI"
    #: KIP-368: SASL sessions last this long (0: forever); clients re-authenticate
    connections_max_reauth_ms: int = 0
    #: bootstrap SCRAM users, ``kafka-storage.sh format --add-scram`` syntax, ';'-separated
    #: (``common.security.scram.parse_add_scram``); written by the active controller for
    #: each (user, mechanism) the metadata log has no credential for
    strom_add_scram: str = ""
    # authorization (``broker.security.authz``)
    #: org.apache.kafka.metadata.authorizer.StandardAuthorizer turns ACLs on; empty: off
    authorizer_class_name: str = ""
    #: principals allowed everything, ';'-separated (User:admin;User:ANONYMOUS)
    super_users: str = ""
    allow_everyone_if_no_acl_found: bool = False
    # client quotas (broker.quotas): the byte-rate measuring windows
    quota_window_num: int = 11
    quota_window_size_seconds: int = 1
    #: KIP-599: a controller_mutation_rate bucket holds num x seconds x rate tokens
    controller_quota_window_num: int = 11
    controller_quota_window_size_seconds: int = 1
    #: listener name -> its ``listener.name.<name>.plain.sasl.jaas.config`` (``broker.sasl``)
    listener_plain_jaas: dict[str, str] = {}
    #: how a broker logs in on another's SASL inter-broker listener
    #: (``broker.security.inter_broker``; Kafka's default GSSAPI is not served)
    sasl_mechanism_inter_broker_protocol: str = "GSSAPI"
    #: how brokers and controllers log in on a SASL controller listener (same module;
    #: Kafka's default GSSAPI is not served)
    sasl_mechanism_controller_protocol: str = "GSSAPI"
    #: ``LISTENER:SCRAM-SHA-256`` -> ``listener.name.<l>.scram-sha-256.sasl.jaas.config``
    listener_sasl_jaas_config: dict[str, str] = {}
    #: the JAAS entry used when a listener has none of its own (the broker's own login)
    sasl_jaas_config: str | None = None
    socket_request_max_bytes: int = 100 * 1024 * 1024
    connections_max_idle_ms: int = 600_000
    # guardrails (Kafka's names and defaults; see broker.server)
    #: bytes of request bodies read and not yet answered, all connections (-1: unbounded)
    queued_max_request_bytes: int = -1
    max_connections: int = 2_147_483_647
    max_connections_per_ip: int = 2_147_483_647
    #: ``host:count,...`` exceptions to max.connections.per.ip
    max_connections_per_ip_overrides: str = ""
    #: new connections per second per listener (beyond it they wait, as in Kafka)
    max_connection_creation_rate: int = 2_147_483_647
    # TLS of SSL and SASL_SSL listeners and of connections to them (broker.tls; each may
    # also be set per listener as listener.name.<listener>.ssl.*)
    ssl_keystore_type: str = "JKS"
    ssl_keystore_location: str | None = None
    ssl_keystore_password: str | None = None
    ssl_keystore_certificate_chain: str | None = None
    ssl_keystore_key: str | None = None
    ssl_key_password: str | None = None
    ssl_truststore_type: str = "JKS"
    ssl_truststore_location: str | None = None
    ssl_truststore_password: str | None = None
    ssl_truststore_certificates: str | None = None
    ssl_enabled_protocols: str = "TLSv1.2,TLSv1.3"
    ssl_protocol: str = "TLSv1.3"
    ssl_cipher_suites: str = ""
    ssl_client_auth: str = "none"
    ssl_principal_mapping_rules: str = "DEFAULT"
    ssl_endpoint_identification_algorithm: str = "https"
    #: listener name -> {ssl.* property: value} from ``listener.name.<l>.ssl.*``
    listener_ssl: dict[str, dict[str, str]] = {}
    queued_max_requests: int = 500
    strom_max_inflight_requests_per_connection: int = 64
    #: host:port of the Prometheus scrape endpoint (GET /metrics); empty: none
    strom_metrics_address: str = ""
    #: host:port of the read-only web console (``broker.console``); empty: none. The same
    #: address as ``strom.metrics.address`` serves both from one HTTP server
    strom_console_address: str = ""
    #: the console's actions that change the cluster (create/delete a topic, reset a
    #: group's offsets), POST forms with a CSRF token; off: read-only
    strom_console_actions_enabled: bool = False
    #: the Kinesis API (``kinesis``; ``broker.kinesis_front``): ``http://host:port`` of its
    #: listener (empty: off), largest record (data + partition key), SigV4 access keys
    #: (``KEY:SECRET,...``; empty: any or no signature accepted), shard-iterator HMAC key
    #: (empty: derived from the cluster id), the region its ARNs name; the advertised
    #: listener is the address other brokers relay to (empty: the bound one, with a
    #: wildcard host shown as 127.0.0.1), e.g. ``http://strom-1:4567`` in compose
    strom_kinesis_listener: str = ""
    strom_kinesis_advertised_listener: str = ""
    strom_kinesis_max_record_bytes: int = 10 * 1024 * 1024
    strom_kinesis_access_keys: str = ""
    strom_kinesis_iterator_secret: str = ""
    strom_kinesis_region: str = "us-east-1"
    #: per-shard write limits as Kinesis' (1000 records/s, 1 MiB/s): writes over them
    #: get ProvisionedThroughputExceededException; 0 = not enforced (the default)
    strom_kinesis_shard_write_records_per_second: int = 0
    strom_kinesis_shard_write_bytes_per_second: int = 0

    # logs
    log_dirs: str = "./data"
    log_dir: str | None = None
    num_partitions: int = 1
    default_replication_factor: int = 1
    min_insync_replicas: int = 1
    auto_create_topics_enable: bool = True
    message_max_bytes: int = 1_048_588
    log_segment_bytes: int = 1024**3
    log_roll_ms: int | None = None
    log_roll_hours: int = 168
    log_retention_ms: int | None = None
    log_retention_minutes: int | None = None
    log_retention_hours: int = 168
    log_retention_bytes: int = -1
    log_retention_check_interval_ms: int = 300_000
    log_index_interval_bytes: int = 4096
    log_index_size_max_bytes: int = 10 * 1024 * 1024
    log_cleanup_policy: str = "delete"
    log_cleaner_enable: bool = True
    log_cleaner_backoff_ms: int = 15_000
    log_cleaner_delete_retention_ms: int = 86_400_000
    log_cleaner_min_compaction_lag_ms: int = 0
    log_flush_interval_messages: int = LONG_MAX
    log_flush_interval_ms: int | None = None
    log_flush_scheduler_interval_ms: int = 1000
    log_message_timestamp_type: str = "CreateTime"
    # the topics' compression.type defaults (KIP-390; checked by the topic config rules)
    compression_type: str = "producer"
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3
    log_segment_delete_delay_ms: int = 60_000
    # replication (Kafka's names and defaults)
    replica_fetch_max_bytes: int = 1_048_576
    replica_fetch_response_max_bytes: int = 10_485_760
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_min_bytes: int = 1
    replica_fetch_backoff_ms: int = 1000
    replica_lag_time_max_ms: int = 30_000
    #: the listener followers fetch from leaders on (default: the first client listener)
    inter_broker_listener_name: str | None = None
    #: KIP-392: unset, leaders serve every consumer; Kafka's RackAwareReplicaSelector
    #: (or its short name) names a follower in the consumer's ``client.rack``
    replica_selector_class: str | None = None
    fetch_max_bytes: int = 57_671_680

    # groups and transactions (used by their coordinators)
    group_initial_rebalance_delay_ms: int = 3000
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1_800_000
    offsets_topic_num_partitions: int = 50
    #: capped by the brokers registered when the topic is created (1 on ``make run``)
    offsets_topic_replication_factor: int = 3
    offsets_retention_minutes: int = 10080
    offsets_retention_check_interval_ms: int = 600_000
    offset_metadata_max_bytes: int = 4096
    offsets_topic_segment_bytes: int = 104_857_600
    group_max_size: int = 2_147_483_647
    # KIP-848 consumer groups (checked by broker.group.consumer_config)
    group_coordinator_rebalance_protocols: str = "classic,consumer"
    group_consumer_assignors: str = "uniform,range"
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_min_session_timeout_ms: int = 45_000
    group_consumer_max_session_timeout_ms: int = 60_000
    group_consumer_heartbeat_interval_ms: int = 5_000
    group_consumer_min_heartbeat_interval_ms: int = 5_000
    group_consumer_max_heartbeat_interval_ms: int = 15_000
    group_consumer_max_size: int = 2_147_483_647
    # KIP-932 share groups (broker.share.config; share.version 0 turns them off)
    share_version: int = 1
    group_share_session_timeout_ms: int = 45_000
    group_share_heartbeat_interval_ms: int = 5_000
    group_share_max_size: int = 200
    group_share_record_lock_duration_ms: int = 30_000
    group_share_delivery_count_limit: int = 5
    group_share_partition_max_record_locks: int = 2000
    group_share_max_share_sessions: int = 2000
    share_coordinator_state_topic_num_partitions: int = 50
    share_coordinator_state_topic_segment_bytes: int = 104_857_600
    transaction_state_log_num_partitions: int = 50
    #: capped by the brokers registered when the topic is created (1 on ``make run``)
    transaction_state_log_replication_factor: int = 3
    #: capped by the replication factor the topic gets
    transaction_state_log_min_isr: int = 2
    transaction_state_log_segment_bytes: int = 104_857_600
    transactional_id_expiration_ms: int = 604_800_000
    transaction_max_timeout_ms: int = 900_000
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    transaction_remove_expired_transaction_cleanup_interval_ms: int = 3_600_000

    # logging of the broker process itself (not a Kafka property)
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | console | json

    @field_validator(
        "num_partitions",
        "default_replication_factor",
        "min_insync_replicas",
        "offsets_topic_num_partitions",
        "offsets_topic_replication_factor",
        "transaction_state_log_num_partitions",
        "transaction_state_log_replication_factor",
        "transaction_state_log_min_isr",
        "transaction_state_log_segment_bytes",
        "transaction_max_timeout_ms",
        "transaction_abort_timed_out_transaction_cleanup_interval_ms",
        "transaction_remove_expired_transaction_cleanup_interval_ms",
        "transactional_id_expiration_ms",
        "replica_fetch_max_bytes",
        "replica_fetch_response_max_bytes",
        "replica_fetch_min_bytes",
        "replica_fetch_backoff_ms",
        "replica_lag_time_max_ms",
        "queued_max_requests",
        "strom_max_inflight_requests_per_connection",
    )
    @classmethod
    def _at_least_one(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator(
        "socket_request_max_bytes",
        "connections_max_idle_ms",
        "message_max_bytes",
        "log_segment_bytes",
        "log_retention_check_interval_ms",
        "log_index_size_max_bytes",
        "log_cleaner_backoff_ms",
        "log_flush_interval_messages",
        "log_flush_scheduler_interval_ms",
        "fetch_max_bytes",
        "offsets_retention_check_interval_ms",
        "offset_metadata_max_bytes",
        "offsets_topic_segment_bytes",
        "group_max_size",
        "offsets_retention_minutes",
        "controller_quorum_election_timeout_ms",
        "controller_quorum_fetch_timeout_ms",
        "controller_quorum_request_timeout_ms",
        "broker_session_timeout_ms",
        "broker_heartbeat_interval_ms",
        "leader_imbalance_check_interval_seconds",
        "unclean_leader_election_interval_ms",
    )
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be > 0")
        return v

    @field_validator(
        "group_initial_rebalance_delay_ms",
        "log_cleaner_delete_retention_ms",
        "log_cleaner_min_compaction_lag_ms",
        "log_index_interval_bytes",
        "log_segment_delete_delay_ms",
        "max_connections",
        "max_connections_per_ip",
        "max_connection_creation_rate",
    )
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator(
        "group_share_session_timeout_ms",
        "group_share_heartbeat_interval_ms",
        "group_share_max_size",
        "group_share_record_lock_duration_ms",
        "group_share_delivery_count_limit",
        "group_share_partition_max_record_locks",
        "group_share_max_share_sessions",
        "share_coordinator_state_topic_num_partitions",
        "share_coordinator_state_topic_segment_bytes",
    )
    @classmethod
    def _share_at_least_one(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("share_version")
    @classmethod
    def _share_version(cls, v: int) -> int:
        if v not in (0, 1):
            raise ValueError("must be 0 (share groups off) or 1")
        return v

    @field_validator("queued_max_request_bytes")
    @classmethod
    def _pool_bytes(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise ValueError("must be -1 (unbounded) or > 0")
        return v

    @field_validator("max_connections_per_ip_overrides")
    @classmethod
    def _per_ip_overrides(cls, v: str) -> str:
        parse_ip_overrides(v)
        return v

    @field_validator("leader_imbalance_per_broker_percentage")
    @classmethod
    def _percentage(cls, v: int) -> int:
        if not 0 <= v <= 100:
            raise ValueError("must be within 0..100")
        return v

    @field_validator("replica_selector_class")
    @classmethod
    def _replica_selector(cls, v: str | None) -> str | None:
        from replication.replica_selector import canonical_selector

        return canonical_selector(v)

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("authorizer_class_name")
    @classmethod
    def _authorizer(cls, v: str) -> str:
        v = v.strip()
        if v and v != STANDARD_AUTHORIZER:
            raise ValueError(f"Strom's authorizer is {STANDARD_AUTHORIZER} (or empty: none)")
        return v

    @field_validator("strom_add_scram")
    @classmethod
    def _add_scram(cls, v: str) -> str:
        parse_add_scram(v)
        return v

    @field_validator("quota_window_num", "quota_window_size_seconds",
                     "controller_quota_window_num", "controller_quota_window_size_seconds")
    @classmethod
    def _quota_window(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("connections_max_reauth_ms")
    @classmethod
    def _reauth(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("listeners")
    @classmethod
    def _listeners(cls, v: str) -> str:
        parse_listeners(v)
        return v

    @field_validator("advertised_listeners", "strom_metrics_address", "strom_console_address",
                     "listener_security_protocol_map")
    @classmethod
    def _parses(cls, v: str | None, info: ValidationInfo) -> str | None:
        """An optional value must parse (empty: not set)."""
        if v:
            _PARSERS[info.field_name](v)
        return v

    @field_validator("log_dirs")
    @classmethod
    def _log_dirs(cls, v: str) -> str:
        dirs = [d.strip() for d in v.split(",") if d.strip()]
        if len(dirs) > 1:
            raise ValueError(f"Strom keeps its logs in one directory (several log.dirs, "
                             f"Kafka's JBOD, are not supported yet); got {len(dirs)}: "
                             f"{', '.join(dirs)}")
        return v


    @field_validator("log_message_timestamp_type")
    @classmethod
    def _ts_type(cls, v: str) -> str:
        if v not in ("CreateTime", "LogAppendTime"):
            raise ValueError("must be CreateTime or LogAppendTime")
        return v

    @field_validator("log_cleanup_policy")
    @classmethod
    def _cleanup(cls, v: str) -> str:
        parts = {p.strip() for p in v.split(",") if p.strip()}
        if not parts or not parts <= {"delete", "compact"}:
            raise ValueError("must be a list of delete, compact")
        return ",".join(sorted(parts))

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return "WARNING" if v.upper() == "WARN" else v.upper()

    @field_validator("log_format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in ("auto", "console", "json"):
            raise ValueError("must be auto, console or json")
        return v

    @field_validator("log_retention_bytes")
    @classmethod
    def _retention_bytes(cls, v: int) -> int:
        if v < -1:
            raise ValueError("must be >= -1")
        return v

    @model_validator(mode="after")
    def _cross(self) -> BrokerConfig:
        if self.log_retention_ms is not None and self.log_retention_ms < -1:
            raise ValueError("log.retention.ms must be >= -1")
        check_listeners(self.listener_list, parse_listeners(self.advertised_listeners)
                        if self.advertised_listeners else [],
                        parse_protocol_map(self.listener_security_protocol_map),
                        self.controller_listener_set)
        self.plain_users()  # every SASL listener has its users
        from broker.group.consumer_config import consumer_config_from

        consumer_config_from(self)  # KIP-848 protocols, assignors and bounds, as Kafka
        return self

    def security_protocol(self, listener: str) -> str:
        return parse_protocol_map(self.listener_security_protocol_map)[listener]

    @property
    def sasl_mechanism_list(self) -> list[str]:
        """``sasl.enabled.mechanisms``, upper case, in order."""
        return [m.strip().upper() for m in self.sasl_enabled_mechanisms.split(",")
                if m.strip()]

    @property
    def super_user_set(self) -> frozenset[str]:
        return parse_super_users(self.super_users)

    def plain_users(self) -> dict[str, dict[str, str]]:
        """listener name -> {user: password} for each SASL listener with PLAIN enabled;
        ValueError naming the property when a SASL listener cannot authenticate anybody
        (a mechanism Strom lacks, or PLAIN without its JAAS entry)."""
        out: dict[str, dict[str, str]] = {}
        for li in self.listener_list:
            if self.security_protocol(li.name) not in ("SASL_PLAINTEXT", "SASL_SSL"):
                continue
            mechanisms = self.sasl_mechanism_list
            unknown = [m for m in mechanisms if m not in SASL_MECHANISMS]
            if unknown or not mechanisms:
                raise ValueError(f"sasl.enabled.mechanisms: Strom authenticates with "
                                 f"{', '.join(SASL_MECHANISMS)}; got "
                                 f"{self.sasl_enabled_mechanisms}")
            if MECHANISM not in mechanisms:
                continue
            key = f"listener.name.{li.name.lower()}.plain.sasl.jaas.config"
            jaas = self.listener_plain_jaas.get(li.name)
            if jaas is None:
                raise ValueError(f"{key} is required for the SASL_PLAINTEXT listener "
                                 f"{li.name}")
            try:
                out[li.name] = parse_jaas_users(jaas)
            except JaasError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out

    # ------------------------------------------------------------------ derived values
    @property
    def listener_list(self) -> list[Listener]:
        return parse_listeners(self.listeners)

    @property
    def advertised_listener_list(self) -> list[Listener]:
        """``advertised.listeners``; a client listener it leaves out advertises itself
        (controller listeners are never advertised to clients)."""
        given = parse_listeners(self.advertised_listeners) if self.advertised_listeners else []
        names = {li.name for li in given} | self.controller_listener_set
        return given + [li for li in self.listener_list if li.name not in names]

    @property
    def controller_listener_set(self) -> set[str]:
        return {n.strip().upper() for n in self.controller_listener_names.split(",")
                if n.strip()}

    @property
    def data_dir(self) -> Path:
        """The log directory: ``log.dirs`` (one entry), else ``log.dir``."""
        raw = self.log_dirs if self.log_dirs else (self.log_dir or "./data")
        return Path(raw.split(",")[0].strip()).expanduser()

    @property
    def retention_ms(self) -> int:
        if self.log_retention_ms is not None:
            return self.log_retention_ms
        if self.log_retention_minutes is not None:
            return self.log_retention_minutes * 60_000
        return self.log_retention_hours * 3_600_000

    @property
    def roll_ms(self) -> int:
        if self.log_roll_ms is not None:
            return self.log_roll_ms
        return self.log_roll_hours * 3_600_000

    @property
    def flush_ms(self) -> int:
        return LONG_MAX if self.log_flush_interval_ms is None else self.log_flush_interval_ms

    def log_config(self) -> LogConfig:
        """Default topic configuration derived from the broker's ``log.*`` settings."""
        return LogConfig(
            segment_bytes=self.log_segment_bytes,
            segment_ms=self.roll_ms,
            index_interval_bytes=self.log_index_interval_bytes,
            segment_index_bytes=self.log_index_size_max_bytes,
            retention_ms=self.retention_ms,
            retention_bytes=self.log_retention_bytes,
            cleanup_policy=frozenset(self.log_cleanup_policy.split(",")),
            delete_retention_ms=self.log_cleaner_delete_retention_ms,
            min_compaction_lag_ms=self.log_cleaner_min_compaction_lag_ms,
            flush_messages=self.log_flush_interval_messages,
            flush_ms=self.flush_ms,
            max_message_bytes=self.message_max_bytes,
            message_timestamp_type=self.log_message_timestamp_type,
            file_delete_delay_ms=self.log_segment_delete_delay_ms,
        )

    def as_properties(self) -> dict[str, Any]:
        """Every setting keyed by its Kafka property name (for DescribeConfigs/banners)."""
        return {property_name(k): v for k, v in self.model_dump().items()}


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java ``.properties`` text: ``key=value`` or ``key: value`` lines, ``#``/``!``
    comments, backslash line continuations. Keys keep their dots."""
    out: dict[str, str] = {}
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip() if not logical else raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical.append(line[:-1])
            continue
        logical.append(line)
        entry = "".join(logical)
        logical = []
        m = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", entry)
        if m:
            out[m[1]] = m[2].strip()
        else:
            out[entry.strip()] = ""
    return out


def _known_fields() -> set[str]:
    return set(BrokerConfig.model_fields)


def load_config(
    config_file: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[BrokerConfig, dict[str, str]]:
    """Build the config from file, ``STROM_*`` env and overrides (see module doc).

    Returns (config, unknown properties). Raises ConfigError naming the bad property.
    """
    environ = os.environ if environ is None else environ
    known = _known_fields()
    unknown: dict[str, str] = {}
    file_values: dict[str, str] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for key, value in parse_properties(text).items():
            name = field_name(key)
            if name in known:
                file_values[name] = value
            else:
                unknown[key] = value
    override_values: dict[str, str] = {}
    items = overrides.items() if isinstance(overrides, Mapping) else _split_overrides(overrides)
    for key, value in items:
        name = field_name(key)
        if name in known:
            override_values[name] = str(value)
        else:
            unknown[key] = str(value)
    env_values = {
        field_name(k[len(ENV_PREFIX):]): v
        for k, v in environ.items()
        if k.upper().startswith(ENV_PREFIX) and field_name(k[len(ENV_PREFIX):]) in known
    }
    jaas = _listener_jaas(unknown, environ)
    login_jaas = _listener_login_jaas(unknown)
    listener_ssl = _listener_ssl(unknown)
    # precedence: file < env < overrides (init kwargs also beat pydantic's own env source)
    init: dict[str, Any] = {**file_values, **env_values, **override_values}
    if jaas:
        init["listener_plain_jaas"] = jaas
    if listener_ssl:
        init["listener_ssl"] = listener_ssl
    if login_jaas:
        init["listener_sasl_jaas_config"] = login_jaas
    # empty strings mean "unset" for optional fields
    for k, v in list(init.items()):
        if v == "" and BrokerConfig.model_fields[k].default is None:
            init[k] = None
    try:
        config = BrokerConfig(**init)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    _check_topic_defaults(config)
    return config, unknown


_JAAS_KEY = re.compile(r"^listener\.name\.([a-z0-9_]+)\.plain\.sasl\.jaas\.config$")
_JAAS_ENV = re.compile(r"^LISTENER_NAME_([A-Z0-9_]+)_PLAIN_SASL_JAAS_CONFIG$")


def _listener_jaas(unknown: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Take the ``listener.name.<l>.plain.sasl.jaas.config`` properties out of
    ``unknown`` (file, overrides) and the environment (``STROM_LISTENER_NAME_<L>_PLAIN_
    SASL_JAAS_CONFIG``; overrides win) → {listener name: JAAS text}."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        m = _JAAS_ENV.match(key.upper()[len(ENV_PREFIX):]) \
            if key.upper().startswith(ENV_PREFIX) else None
        if m:
            out[m[1]] = value
    for key in list(unknown):
        m = _JAAS_KEY.match(key.strip().lower())
        if m:
            out[m[1].upper()] = unknown.pop(key)
    return out


_LOGIN_JAAS_KEY = re.compile(
    r"^listener\.name\.([a-z0-9_]+)\.(scram-sha-256|scram-sha-512)\.sasl\.jaas\.config$")


def _listener_login_jaas(unknown: dict[str, str]) -> dict[str, str]:
    """Take ``listener.name.<l>.scram-sha-{256,512}.sasl.jaas.config`` out of ``unknown``
    → {``LISTENER:MECHANISM``: JAAS text} (the broker's own SCRAM login)."""
    out: dict[str, str] = {}
    for key in list(unknown):
        m = _LOGIN_JAAS_KEY.match(key.strip().lower())
        if m:
            out[f"{m[1].upper()}:{m[2].upper()}"] = unknown.pop(key)
    return out


_SSL_KEY = re.compile(r"^listener\.name\.([a-z0-9_]+)\.(ssl\.[a-z.]+)$")


def _listener_ssl(unknown: dict[str, str]) -> dict[str, dict[str, str]]:
    """Take the ``listener.name.<l>.ssl.*`` properties out of ``unknown`` →
    {listener name: {ssl property: value}}."""
    out: dict[str, dict[str, str]] = {}
    for key in list(unknown):
        m = _SSL_KEY.match(key.strip().lower())
        if m and field_name(m[2]) in BrokerConfig.model_fields:
            out.setdefault(m[1].upper(), {})[m[2]] = unknown.pop(key)
    return out


def _check_topic_defaults(config: BrokerConfig) -> None:
    """Broker properties that are topic defaults (``log.segment.bytes`` → ``segment.bytes``
    ...) must also pass the topic config rules; report them like any invalid value."""
    from broker.topics import BrokerDefaults, InvalidConfig

    try:
        BrokerDefaults.from_broker_config(config)
    except InvalidConfig as exc:
        raise ConfigError(str(exc)) from None


def _split_overrides(overrides: Iterable[str]) -> Iterable[tuple[str, str]]:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--override expects key=value, got {item!r}")
        yield key.strip(), value.strip()


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        if not loc:  # a rule across properties: the message names them
            parts.append(f"invalid configuration: {msg}")
        elif loc[0] == "listener_plain_jaas":  # never echo passwords
            parts.append(f"invalid listener.name.<listener>.plain.sasl.jaas.config: {msg}")
        elif str(loc[0]).startswith(("ssl_key", "ssl_truststore", "listener_ssl")):
            parts.append(f"invalid configuration {property_name(str(loc[0]))}: {msg}")
        else:
            parts.append(f"invalid value {err.get('input')!r} for configuration "
                         f"{property_name(str(loc[0]))}: {msg}")
    return "; ".join(parts)


def explicit_properties(config: BrokerConfig) -> dict[str, Any]:
    """The properties the operator set (file, env, overrides), by Kafka name."""
    return {property_name(k): getattr(config, k) for k in sorted(config.model_fields_set)}
