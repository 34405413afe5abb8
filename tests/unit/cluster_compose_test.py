"""docker/docker-compose.yml runs the same 3-node topology as ``make cluster``
(``broker.local_cluster``): three combined-mode services, node ids 1-3, client ports
9092-9094 (advertised to the host) and controller ports 19092-19094 published, an
INTERNAL listener advertised under the service name for containers, one voter list
naming the same ids and controller ports, one cluster id; and the Dockerfile builds the
``strom`` command.

PyYAML is not a dependency, so the file is read by ``read_yaml``: a reader for the block
subset the compose file uses (mappings, lists of scalars, quoted or plain scalars,
comments) that refuses anything else — so the file stays in that subset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from broker.config import load_config, parse_listeners
from broker.local_cluster import CLUSTER_ID, node_overrides, topology
from controller.quorum import parse_voters

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _scalar(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    if text[0] in "\"'":
        if len(text) < 2 or text[-1] != text[0]:
            raise ValueError(f"unterminated quoted scalar: {text}")
        return text[1:-1]
    if text[0] in "&*!|>{[" or text.startswith("<<"):
        raise ValueError(f"YAML feature outside the supported subset: {text}")
    return text


def read_yaml(text: str) -> Any:
    """Parse the block-YAML subset described in the module doc."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise ValueError("tabs in indentation")
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))
    pos = 0

    def block(indent: int) -> Any:
        nonlocal pos
        if lines[pos][1].startswith("- "):
            items = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                items.append(_scalar(lines[pos][1][2:]))
                pos += 1
            return items
        mapping: dict[str, Any] = {}
        while pos < len(lines) and lines[pos][0] == indent:
            key, sep, rest = lines[pos][1].partition(":")
            if not sep or (rest and not rest.startswith(" ")):
                raise ValueError(f"not a 'key: value' line: {lines[pos][1]}")
            key = _scalar(key)
            if key in mapping:
                raise ValueError(f"duplicate key {key}")
            pos += 1
            if rest.strip():
                mapping[key] = _scalar(rest)
            elif pos < len(lines) and lines[pos][0] > indent:
                mapping[key] = block(lines[pos][0])
            else:
                mapping[key] = None
        if pos < len(lines) and lines[pos][0] > indent:
            raise ValueError(f"unexpected indentation at: {lines[pos][1]}")
        return mapping

    doc = block(0)
    if pos != len(lines):
        raise ValueError(f"trailing content at: {lines[pos][1]}")
    return doc


def test_reader_refuses_what_it_does_not_understand() -> None:
    assert read_yaml("a:\n  b: 'x'\n  c:\n    - \"1\"\n    - 2\nd:\n") == \
        {"a": {"b": "x", "c": ["1", "2"]}, "d": None}
    for bad in ("a: &anchor x\n", "a:\n  <<: *x\n", "a: [1, 2]\n", "a: 1\na: 2\n"):
        with pytest.raises(ValueError):
            read_yaml(bad)


def _service_config(service: dict[str, Any]) -> Any:
    env = {k: str(v) for k, v in service["environment"].items()}
    config, unknown = load_config(environ=env)
    assert not unknown
    return config


def test_compose_services_match_the_local_cluster() -> None:
    doc = read_yaml(COMPOSE.read_text())
    services = doc["services"]
    assert sorted(services) == ["strom-1", "strom-2", "strom-3"]
    local = topology()
    voter_sets = set()
    for name, service in services.items():
        config = _service_config(service)
        node_id = config.node_id
        assert name == f"strom-{node_id}"
        assert service["hostname"] == name
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert set(config.process_roles.split(",")) == {"broker", "controller"}
        assert config.cluster_id == CLUSTER_ID
        expected = local[node_id]
        listeners = {li.name: li for li in parse_listeners(config.listeners)}
        assert listeners["PLAINTEXT"].port == expected["client_port"]
        assert listeners["CONTROLLER"].port == expected["controller_port"]
        assert config.controller_listener_names == "CONTROLLER"
        assert listeners["INTERNAL"].port == 29092  # on the compose network only
        advertised = {a.name: (a.host, a.port) for a in config.advertised_listener_list}
        assert advertised == {"PLAINTEXT": ("127.0.0.1", expected["client_port"]),
                              "INTERNAL": (name, 29092)}
        assert sorted(service["ports"]) == sorted(
            f"{p}:{p}" for p in (expected["client_port"], expected["controller_port"],
                                 expected["metrics_port"]))
        assert config.strom_metrics_address == f"0.0.0.0:{expected['metrics_port']}"
        # replicated as the local cluster is; followers fetch over the compose network
        assert (config.default_replication_factor, config.min_insync_replicas) == (3, 2)
        assert config.inter_broker_listener_name == "INTERNAL"
        voters = parse_voters(config.controller_quorum_voters)
        local_voters = parse_voters(str(expected["voters"]))
        # same ids and controller ports; hosts are the compose service names
        assert {i: port for i, (_, port) in voters.items()} == \
            {i: port for i, (_, port) in local_voters.items()}
        assert {i: host for i, (host, _) in voters.items()} == {i: f"strom-{i}" for i in voters}
        voter_sets.add(config.controller_quorum_voters)
        assert service["volumes"] == [f"{name}-data:{config.log_dirs}"]
    assert len(voter_sets) == 1
    assert sorted(doc["volumes"]) == [f"strom-{i}-data" for i in (1, 2, 3)]


def test_local_cluster_overrides_are_valid_configs(tmp_path: Path) -> None:
    for node_id in (1, 2, 3):
        overrides = node_overrides(node_id, nodes=3, client_port=9092, controller_port=19092,
                                   data_dir=tmp_path, metrics_port=9644)
        config, unknown = load_config(overrides=overrides, environ={})
        assert not unknown
        assert config.node_id == node_id
        assert config.strom_metrics_address == f"127.0.0.1:{9643 + node_id}"
        assert parse_voters(config.controller_quorum_voters) == {
            i: ("127.0.0.1", 19091 + i) for i in (1, 2, 3)}


def test_dockerfile_installs_the_package_and_runs_strom() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install --no-cache-dir \.", text, re.M)
    for package in ("broker", "storage", "protocol", "replication", "controller", "common",
                    "net"):
        assert f"COPY {package} ./{package}" in text
    assert 'ENTRYPOINT ["strom"]' in text and 'CMD ["serve"]' in text
    assert re.search(r"^VOLUME .*/var/lib/strom", text, re.M)
