"""``broker.banner``: the rows a person reads, the kcat line chosen by listener protocol,
and a controller-only node's banner (no bootstrap, nothing to produce to)."""

from __future__ import annotations

from broker.banner import ClientListener, StartupInfo, kcat_line, render_banner, startup_fields

BASE = dict(version="1.2.3", node_id=4, roles="broker", cluster_id="c1", data_dir="/d")


def test_banner_rows_follow_the_listeners_in_order() -> None:
    info = StartupInfo(**BASE, listeners=(
        ClientListener("PLAINTEXT", "127.0.0.1:9092", "0.0.0.0:9092"),
        ClientListener("INTERNAL", "strom-4:29092", "0.0.0.0:29092")),
        metrics_url="http://127.0.0.1:9644/metrics")
    lines = render_banner(info).splitlines()
    assert lines[1] == "Strom 1.2.3 · node 4 · broker · cluster c1"
    assert lines[0] == lines[-1] == ""  # set apart from the log lines around it
    assert lines[2:-1] == [
        "  listener PLAINTEXT  127.0.0.1:9092  (bound 0.0.0.0:9092, PLAINTEXT)",
        "  listener INTERNAL   strom-4:29092  (bound 0.0.0.0:29092, PLAINTEXT)",
        "  bootstrap           127.0.0.1:9092",
        "  metrics             http://127.0.0.1:9644/metrics",
        "  data                /d",
        "  try                 echo hello | kcat -b 127.0.0.1:9092 -t demo -P && "
        "kcat -b 127.0.0.1:9092 -t demo -C -e",
    ]


def test_kcat_prefers_plaintext_and_otherwise_says_what_sasl_needs() -> None:
    sasl = ClientListener("SASL", "h:1", "h:1", "SASL_PLAINTEXT")
    plain = ClientListener("PLAIN", "h:2", "h:2")
    assert kcat_line(StartupInfo(**BASE, listeners=(sasl, plain))).startswith(
        "echo hello | kcat -b h:2 -t demo -P")
    line = kcat_line(StartupInfo(**BASE, listeners=(sasl,)))
    assert "-b h:1 -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN " \
           "-X sasl.username=USER -X sasl.password=PASS -t demo -C -e" in line


def test_a_controller_only_node_has_no_bootstrap() -> None:
    info = StartupInfo(**{**BASE, "roles": "controller"}, controller="127.0.0.1:19092")
    text = render_banner(info)
    assert "  controller  127.0.0.1:19092\n" in text
    assert "bootstrap" not in text and "kcat" not in text
    assert startup_fields(info) == {}
