"""docker/docker-compose.yml runs the same 3-node topology as ``make cluster``
(``broker.local_cluster``): three combined-mode services, node ids 1-3, client ports
9092-9094 (advertised to the host) and controller ports 19092-19094 published, an
INTERNAL listener advertised under the service name for containers, one voter list
naming the same ids and controller ports, one cluster id; and the Dockerfile builds the
``strom`` command. Beside the brokers, Prometheus (``docker/prometheus.yml``) scrapes
every broker's metrics port and Grafana is provisioned with that Prometheus as its data
source and with the dashboard ``docker/grafana/dashboards/strom.json``, whose every query
names metrics a broker serves (``tests/e2e/test_metrics.py`` checks them against a live
broker's ``/metrics``).

PyYAML is not a dependency, so the files are read by ``read_yaml``: a reader for the
block subset they use (mappings, lists of scalars or of mappings, quoted or plain
scalars, comments) that refuses anything else — so the files stay in that subset.
"""

from __future__ import annotations

import json
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
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "strom.json"
BROKERS = ["strom-1", "strom-2", "strom-3"]
#: the metric families a Strom broker serves: its own and prometheus_client's collectors
_BROKER_METRIC = re.compile(r"\b(?:strom|process|python)_[a-z0-9_]+\b")


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
                item = lines[pos][1][2:]
                if re.match(r"[A-Za-z_][\w.-]*:( |$)", item):  # "- key: ..." starts a mapping
                    lines[pos] = (indent + 2, item)
                    items.append(block(indent + 2))
                else:
                    items.append(_scalar(item))
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
    assert read_yaml("l:\n  - k: v\n    m:\n      - x\n  - \"p:q\"\n  - k: w\n") == \
        {"l": [{"k": "v", "m": ["x"]}, "p:q", {"k": "w"}]}
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
    assert sorted(services) == ["grafana", "prometheus", *BROKERS]
    local = topology()
    voter_sets = set()
    for name in BROKERS:
        service = services[name]
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
                                 expected["metrics_port"], expected["kinesis_port"]))
        # the Kinesis API on the local cluster's port; relays between brokers go to the
        # advertised address on the compose network, not to the container's own loopback
        assert config.strom_kinesis_listener == f"http://0.0.0.0:{expected['kinesis_port']}"
        assert config.strom_kinesis_advertised_listener == \
            f"http://{name}:{expected['kinesis_port']}"
        assert config.strom_metrics_address == f"0.0.0.0:{expected['metrics_port']}"
        assert config.strom_console_address == config.strom_metrics_address  # one server
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
        assert config.strom_console_address == config.strom_metrics_address
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


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path (relative to docker/) of a service's bind mounts."""
    out = {}
    for volume in service["volumes"]:
        host, container = volume.split(":")[:2]
        assert host.startswith("./"), volume
        out[container] = COMPOSE.parent / host
    return out


def test_prometheus_scrapes_every_brokers_metrics_port() -> None:
    services = read_yaml(COMPOSE.read_text())["services"]
    prometheus = services["prometheus"]
    assert prometheus["ports"] == ["9090:9090"]
    assert sorted(prometheus["depends_on"]) == BROKERS
    config_path = "/etc/prometheus/prometheus.yml"
    assert f"--config.file={config_path}" in prometheus["command"]
    config = read_yaml(_mounts(prometheus)[config_path].read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "strom" and job["metrics_path"] == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    expected = []
    for name in BROKERS:
        metrics = _service_config(services[name]).strom_metrics_address
        expected.append(f"{name}:{metrics.rpartition(':')[2]}")
    assert sorted(targets) == sorted(expected)


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] if p["type"] != "row" for t in p["targets"]]


def broker_metric_names(expr: str) -> set[str]:
    """The broker metrics (strom_*, process_*, python_*) a PromQL expression reads."""
    return set(_BROKER_METRIC.findall(expr))


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    services = read_yaml(COMPOSE.read_text())["services"]
    grafana = services["grafana"]
    assert grafana["ports"] == ["3000:3000"] and grafana["depends_on"] == ["prometheus"]
    mounts = _mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = read_yaml((provisioning / "datasources" / "prometheus.yml").read_text()
                          )["datasources"]
    port = services["prometheus"]["ports"][0].split(":")[1]
    assert source["type"] == "prometheus" and source["url"] == f"http://prometheus:{port}"
    (provider,) = read_yaml((provisioning / "dashboards" / "strom.yml").read_text()
                            )["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert (dashboards / DASHBOARD.name).read_bytes() == DASHBOARD.read_bytes()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    doc = json.loads(DASHBOARD.read_text())
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            # every query reads broker metrics, or Prometheus' own up{job} of the scrape job
            assert broker_metric_names(target["expr"]) or \
                target["expr"].startswith('count(up{job="strom"}'), target["expr"]
    queried = set().union(*(broker_metric_names(e) for e in dashboard_queries()))
    # the metrics operators alert on are on the dashboard
    assert {"strom_under_replicated_partitions", "strom_offline_partitions",
            "strom_consumer_group_lag", "strom_request_seconds_bucket",
            "strom_bytes_in_total", "strom_partition_under_replicated"} <= queried
