"""The web console (``broker.console``) in headless Chromium against a live broker with
data: the overview lists the broker, the quorum and a topic with its partition count;
the topic's page shows each partition's leader, ISR and offsets; the groups page shows a
committed group's offsets and lag; the message browser shows records from the latest,
an offset or a time, with keys, headers and values decoded as UTF-8, JSON or hex; an
unknown topic is a 404 page and a malformed browser query a 400 naming the field. The
console shares the metrics port (as ``make run`` has it), and ``/metrics`` still answers
there. On a broker with an authorizer the console (which has no login) is off: 403."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.test_metrics import free_port
from tests.support.broker import BrokerProcess
from tests.support.browser import follow, headless_chromium
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

TIMEOUT = 20.0
T0 = 1_700_000_000_000  # the browsed topic's first record time (ms)


class Console(NamedTuple):
    base: str  # the console's URL, without the final /
    topic: str
    group: str
    bootstrap: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console of a broker with data: ``topic`` and ``group`` as below; topic ``<topic>-b`` (one
    partition) holds a JSON record with key and header, a binary one and a text one, a
    second apart from ``T0``."""
    port = free_port()
    base = tmp_path_factory.mktemp("console")
    node = BrokerProcess(base / "node", {**BROKER_DEFAULT_OVERRIDES,
                                         "strom.metrics.address": f"127.0.0.1:{port}",
                                         "strom.console.address": f"127.0.0.1:{port}"})
    node.start()
    try:
        topic, group = f"con-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        admin.create_topics([NewTopic(topic, 3, 1), NewTopic(f"{topic}-b", 1, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        for i in range(15):  # 10 records in partition 0, 5 in partition 1, none in 2
            producer.send(topic, f"v{i}".encode(), partition=0 if i < 10 else 1)
        for i, (key, value) in enumerate([(b"k1", b'{"n": 1, "s": "\xc3\xa9"}'),
                                          (None, b"\xff\x00"), (b"k3", b"plain")]):
            producer.send(f"{topic}-b", value, key=key, partition=0, timestamp_ms=T0 + i * 1000,
                          headers=[("h", f"x{i}".encode())])
        producer.flush(TIMEOUT)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group,
                                 enable_auto_commit=False)
        tps = {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 5}
        consumer.assign(list(tps))
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in tps.items()})
        consumer.close()
        yield Console(f"http://127.0.0.1:{port}", topic, group, node.bootstrap)
        node.stop()
    finally:
        node.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def rows(browser: WebDriver, table_id: str) -> list[dict[str, str]]:
    """The rows of table ``table_id`` as {data-col: shown text}."""
    out = []
    for tr in browser.find_elements(By.CSS_SELECTOR, f"table[id='{table_id}'] tbody tr"):
        cells = tr.find_elements(By.CSS_SELECTOR, "td[data-col]")
        out.append({td.get_attribute("data-col"): td.text for td in cells})
    return out


def test_overview_lists_the_broker_quorum_and_topics(
        console: Console, browser: WebDriver, tmp_path: Path) -> None:
    base, topic = console.base, console.topic
    browser.get(base + "/")
    assert browser.title == "Cluster · Strom"
    assert rows(browser, "brokers") == [{"id": "1", "state": "serving"}]
    assert "leader 1" in browser.find_element(By.ID, "quorum").text
    (row,) = [r for r in rows(browser, "topics") if r["name"] == topic]
    assert row["partitions"] == "3" and row["replication_factor"] == "1"
    assert row["under_replicated"] == "0"
    assert row["size"].endswith(" B") and row["size"] != "—"
    assert browser.save_screenshot(str(tmp_path / "overview.png"))
    follow(browser, browser.find_element(By.LINK_TEXT, topic))
    assert browser.title == f"Topic {topic} · Strom"


def test_topic_page_shows_partitions_with_offsets(
        console: Console, browser: WebDriver) -> None:
    base, topic = console.base, console.topic
    browser.get(f"{base}/topics/{topic}")
    shown = rows(browser, "partitions")
    assert [(r["partition"], r["leader"], r["isr"], r["log_start_offset"],
             r["high_watermark"], r["log_end_offset"]) for r in shown] == [
        ("0", "1", "1", "0", "10", "10"), ("1", "1", "1", "0", "5", "5"),
        ("2", "1", "1", "0", "0", "0")]
    assert shown[2]["size"] == "0 B" and shown[0]["size"] != "0 B"


def test_groups_page_shows_committed_offsets_and_lag(
        console: Console, browser: WebDriver) -> None:
    base, topic, group = console.base, console.topic, console.group
    browser.get(f"{base}/groups")
    assert [(r["topic"], r["partition"], r["committed"], r["high_watermark"], r["lag"])
            for r in rows(browser, f"group-{group}")] == [
        (topic, "0", "4", "10", "6"), (topic, "1", "5", "5", "0")]
    assert "Empty" in browser.page_source  # no member is in the group


def test_unknown_topic_is_a_404_page_and_metrics_still_answer(
        console: Console, browser: WebDriver) -> None:
    base = console.base
    browser.get(f"{base}/topics/nope")
    assert "No topic 'nope'." in browser.find_element(By.TAG_NAME, "main").text
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{base}/topics/nope", timeout=TIMEOUT)
    assert err.value.code == 404
    with urllib.request.urlopen(f"{base}/metrics", timeout=TIMEOUT) as resp:
        assert b"strom_consumer_group_lag" in resp.read()


def test_browser_reads_the_latest_records_from_the_topic_page(
        console: Console, browser: WebDriver) -> None:
    base, topic = console.base, console.topic
    browser.get(f"{base}/topics/{topic}")
    follow(browser, browser.find_elements(By.LINK_TEXT, "browse")[0])  # partition 0
    assert browser.title == f"Messages of {topic} · Strom"
    shown = rows(browser, "records")
    assert [(r["offset"], r["value"]) for r in shown] == [(str(i), f"v{i}") for i in range(10)]
    assert all(r["key"] == "null" for r in shown)


def test_browser_decodes_keys_headers_and_values(
        console: Console, browser: WebDriver) -> None:
    base, topic = console.base, console.topic
    browser.get(f"{base}/topics/{topic}-b/messages?partition=0&offset=0&decode=json")
    first, binary, text = rows(browser, "records")
    assert (first["key"], first["headers"]) == ("k1", "h: x0")  # not JSON: as text
    assert first["value"] == '{\n  "n": 1,\n  "s": "é"\n}'
    assert first["timestamp"] == "2023-11-14T22:13:20.000+00:00"
    assert binary["value"] == "ff 00" and binary["key"] == "null"  # not UTF-8: hex
    assert text["value"] == "plain"  # not JSON: as text
    browser.get(f"{base}/topics/{topic}-b/messages?offset=2&decode=hex")
    (only,) = rows(browser, "records")
    assert (only["offset"], only["key"], only["value"]) == ("2", "6b 33", "70 6c 61 69 6e")


def test_browser_starts_at_a_time_or_an_offset_and_pages_on(
        console: Console, browser: WebDriver) -> None:
    base, topic = console.base, console.topic
    browser.get(f"{base}/topics/{topic}-b/messages")
    form = browser.find_element(By.ID, "browse")
    form.find_element(By.NAME, "timestamp").send_keys("2023-11-14T22:13:21")  # T0 + 1 s
    follow(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert [r["offset"] for r in rows(browser, "records")] == ["1", "2"]
    browser.get(f"{base}/topics/{topic}/messages?partition=0&offset=3&limit=2")
    assert [r["value"] for r in rows(browser, "records")] == ["v3", "v4"]
    follow(browser, browser.find_element(By.ID, "next"))
    assert [r["value"] for r in rows(browser, "records")] == ["v5", "v6"]
    browser.get(f"{base}/topics/{topic}/messages?partition=2")
    assert browser.find_element(By.ID, "no-records").text == "No records there."


def test_a_malformed_browser_query_is_a_400_naming_the_field(
        console: Console, browser: WebDriver) -> None:
    base, topic = console.base, console.topic
    for query, message in [("offset=abc", "offset must be a whole number, not 'abc'"),
                           ("limit=0", "limit must be between 1 and 500, not 0"),
                           ("decode=rot13", "decode must be one of utf8, json, hex"),
                           ("timestamp=yesterday", "timestamp must be ms since the epoch")]:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/topics/{topic}/messages?{query}", timeout=TIMEOUT)
        assert err.value.code == 400
        browser.get(f"{base}/topics/{topic}/messages?{query}")
        assert message in browser.find_element(By.ID, "browse-error").text
    browser.get(f"{base}/topics/{topic}/messages?partition=7")
    assert browser.find_element(By.ID, "browse-error").text == f"{topic} has no partition 7"


def test_live_charts_show_traffic_as_it_happens(console: Console, browser: WebDriver) -> None:
    live_topic = f"{console.topic}-live"
    admin = KafkaAdminClient(bootstrap_servers=console.bootstrap)
    admin.create_topics([NewTopic(live_topic, 1, 1)])
    admin.close()
    browser.get(console.base + "/")
    stop = threading.Event()

    def produce() -> None:
        producer = KafkaProducer(bootstrap_servers=console.bootstrap, acks=1)
        while not stop.is_set():
            producer.send(live_topic, b"x" * 100)
            producer.flush(TIMEOUT)
            time.sleep(0.02)
        producer.close()

    producing = threading.Thread(target=produce, daemon=True)
    producing.start()
    try:
        def live_row(driver: WebDriver) -> dict[str, str] | None:
            row = next((r for r in rows(driver, "topic-rates") if r["topic"] == live_topic),
                       None)
            return row if row and row["messages_in"] != "0.0 /s" else None

        row = WebDriverWait(browser, 30, poll_frequency=0.2).until(live_row)
        assert row["bytes_in"].endswith("B/s") and row["bytes_in"] != "0 B/s"
        chart = browser.find_element(By.CSS_SELECTOR, "svg[data-series='messages_in']")
        assert float(chart.get_attribute("data-last")) > 0
        assert chart.find_element(By.TAG_NAME, "polyline").get_attribute("points")
        assert browser.find_element(By.ID, "rate-under_replicated").text == "0"
        assert browser.find_element(By.ID, "live-error").text == ""
    finally:
        stop.set()
        producing.join(TIMEOUT)


def test_console_is_off_on_a_broker_with_an_authorizer(tmp_path: Path) -> None:
    port = free_port()
    node = BrokerProcess(tmp_path / "acl", {
        **BROKER_DEFAULT_OVERRIDES, "strom.console.address": f"127.0.0.1:{port}",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS"})
    node.start()
    try:
        for path in ("/", "/groups", "/topics/t/messages?offset=0", "/api/stats"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT)
            assert err.value.code == 403
            assert b"The console has no login" in err.value.read()
        node.stop()
    finally:
        node.close()
