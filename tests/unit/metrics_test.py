"""Prometheus text exposition: families in registration order with HELP and TYPE,
escaped label values, cumulative histogram buckets with +Inf, _sum and _count; a gauge
callback that fails is left out; the scrape endpoint's answers."""

from __future__ import annotations

import pytest

from broker.metrics_http import answer
from common.metrics import Registry


def test_counter_histogram_and_gauges_render_in_the_text_format() -> None:
    r = Registry()
    c = r.counter("x_total", "Things.", ("topic",))
    h = r.histogram("lat_seconds", "Latency.", ("api",), buckets=(0.1, 1.0))
    r.gauge("up", "Up.", lambda: 1)
    r.gauge("per", "Per label.", lambda: [(("b",), 2.5), (("a",), 3)], ("k",))
    c.inc('we"ird\\\n')
    c.inc("t", amount=4)
    c.inc("t")
    for value in (0.05, 0.1, 0.5, 7.0):
        h.observe(value, "Produce")
    assert r.render().splitlines() == [
        "# HELP x_total Things.",
        "# TYPE x_total counter",
        "x_total{topic=\"t\"} 5",
        'x_total{topic="we\\"ird\\\\\\n"} 1',
        "# HELP lat_seconds Latency.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{api="Produce",le="0.1"} 2',
        'lat_seconds_bucket{api="Produce",le="1"} 3',
        'lat_seconds_bucket{api="Produce",le="+Inf"} 4',
        'lat_seconds_sum{api="Produce"} 7.65',
        'lat_seconds_count{api="Produce"} 4',
        "# HELP up Up.",
        "# TYPE up gauge",
        "up 1",
        "# HELP per Per label.",
        "# TYPE per gauge",
        'per{k="a"} 3',
        'per{k="b"} 2.5',
    ]


def test_a_failing_gauge_is_left_out_and_names_are_unique() -> None:
    r = Registry()
    r.gauge("broken", "Broken.", lambda: 1 / 0)
    r.gauge("fine", "Fine.", lambda: 0)
    assert r.render() == "# HELP fine Fine.\n# TYPE fine gauge\nfine 0\n"
    with pytest.raises(ValueError, match="registered twice"):
        r.counter("fine", "Again.")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK"),
        (b"GET /metrics?name=x HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK"),
        (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 Not Found"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed"),
        (b"\xff\xfe garbage\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /metrics SPDY/3\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    ],
)
def test_scrape_endpoint_answers(head: bytes, status: bytes) -> None:
    r = Registry()
    r.gauge("up", "Up.", lambda: 1)
    response = answer(head, r)
    assert response.startswith(status + b"\r\n")
    body = response.split(b"\r\n\r\n", 1)[1]
    assert f"Content-Length: {len(body)}\r\n".encode() in response
    if status.endswith(b"200 OK"):
        assert b"Content-Type: text/plain; version=0.0.4" in response
        assert body.endswith(b"\nup 1\n")
