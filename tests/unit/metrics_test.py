"""``common.metrics`` on prometheus_client: labelled counters and histograms with
cumulative buckets, callback gauges (a failing one is left out), one registry per owner
(two brokers in one process count apart), the standard process and Python collectors;
``broker.metrics_http``: the scrape endpoint's answers over real HTTP (content
negotiation, gzip, ``name[]``, 404, 405)."""

from __future__ import annotations

import gzip

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from broker.metrics import BrokerMetrics
from broker.metrics_http import MetricsServer
from broker.partition_metrics import consumer_lag
from common.metrics import CallbackGauges, LabelledCounter, LabelledHistogram, new_registry


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_histograms_and_gauges_render_in_the_text_format() -> None:
    r = new_registry()
    c = LabelledCounter(r, "x_total", "Things.", ("topic",))
    h = LabelledHistogram(r, "lat_seconds", "Latency.", ("api",), buckets=(0.1, 1.0))
    gauges = CallbackGauges()
    gauges.gauge("up", "Up.", lambda: 1)
    gauges.gauge("per", "Per label.", lambda: [(("b",), 2.5), (("a",), 3)], ("k",))
    gauges.register(r)
    c.inc('we"ird\\\n')
    c.inc("t", amount=4)
    c.inc("t")
    for v in (0.05, 0.1, 0.5, 7.0):
        h.observe(v, "Produce")
    text = generate_latest(r).decode()
    assert "# TYPE x_total counter" in text and "# TYPE lat_seconds histogram" in text
    assert 'x_total{topic="we\\"ird\\\\\\n"} 1.0' in text
    got = samples(text)

    def value(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    assert value("x_total", topic="t") == 5
    assert value("lat_seconds_bucket", api="Produce", le="0.1") == 2  # le is inclusive
    assert value("lat_seconds_bucket", api="Produce", le="1.0") == 3
    assert value("lat_seconds_bucket", api="Produce", le="+Inf") == 4
    assert value("lat_seconds_count", api="Produce") == 4
    assert value("lat_seconds_sum", api="Produce") == pytest.approx(7.65)
    assert value("up") == 1
    assert value("per", k="a") == 3 and value("per", k="b") == 2.5


def test_a_failing_gauge_is_left_out_and_names_are_unique() -> None:
    r = new_registry()
    gauges = CallbackGauges()
    gauges.gauge("broken", "Broken.", lambda: 1 / 0)
    gauges.gauge("fine", "Fine.", lambda: 0)
    with pytest.raises(ValueError, match="registered twice"):
        gauges.gauge("fine", "Again.", lambda: 1)
    gauges.register(r)
    text = generate_latest(r).decode()
    assert "\nfine 0.0\n" in text and "broken" not in text
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        LabelledCounter(r, "fine", "Clashes with the gauge.")


def test_each_broker_has_its_own_registry_with_the_standard_collectors() -> None:
    a, b = BrokerMetrics(), BrokerMetrics()
    a.request_done("offset_fetch", 0.002)
    a.bytes_in.inc("t", amount=100)
    b.bytes_in.inc("t", amount=7)
    got_a, got_b = samples(generate_latest(a.registry).decode()), \
        samples(generate_latest(b.registry).decode())
    assert got_a[("strom_bytes_in_total", frozenset({("topic", "t")}))] == 100
    assert got_b[("strom_bytes_in_total", frozenset({("topic", "t")}))] == 7
    assert got_a[("strom_requests_total", frozenset({("api", "OffsetFetch")}))] == 1
    assert ("strom_requests_total", frozenset({("api", "OffsetFetch")})) not in got_b
    # buckets from 0.5 ms: a 2 ms request is above 1 ms and within 2.5 ms
    bucket = "strom_request_seconds_bucket"
    assert got_a[(bucket, frozenset({("api", "OffsetFetch"), ("le", "0.001")}))] == 0
    assert got_a[(bucket, frozenset({("api", "OffsetFetch"), ("le", "0.0025")}))] == 1
    names = {name for name, _ in got_a}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
            "python_info", "python_gc_objects_collected_total"} <= names


def test_consumer_lag_is_the_distance_to_the_high_watermark() -> None:
    assert consumer_lag(high_watermark=10, committed=4) == 6
    assert consumer_lag(high_watermark=10, committed=10) == 0
    assert consumer_lag(high_watermark=3, committed=5) == 0  # a follower's older view


async def test_scrape_endpoint_answers_over_http() -> None:
    metrics = BrokerMetrics()
    metrics.bytes_out.inc("t", amount=3)
    server = MetricsServer(metrics.registry)
    host, port = await server.start("127.0.0.1", 0)
    base = f"http://{host}:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                         auto_decompress=False,
                                         headers={"Accept-Encoding": "identity"}) as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                assert 'strom_bytes_out_total{topic="t"} 3.0' in await resp.text()
            async with http.get(f"{base}/metrics", headers={
                    "Accept": "application/openmetrics-text; version=1.0.0",
                    "Accept-Encoding": "gzip"}) as resp:
                assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
                assert resp.headers["Content-Encoding"] == "gzip"
                body = gzip.decompress(await resp.read()).decode()
                assert 'strom_bytes_out_total{topic="t"} 3.0' in body
                assert body.endswith("# EOF\n")
            async with http.get(f"{base}/metrics?name[]=strom_bytes_out_total") as resp:
                body = await resp.text()
                assert "strom_bytes_out_total" in body and "process_" not in body
            async with http.get(f"{base}/") as resp:
                assert resp.status == 404
            async with http.post(f"{base}/metrics") as resp:
                assert resp.status == 405
    finally:
        await server.shutdown()


async def test_a_taken_port_is_an_os_error() -> None:
    first = MetricsServer(new_registry())
    _, port = await first.start("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await MetricsServer(new_registry()).start("127.0.0.1", port)
    finally:
        await first.shutdown()
