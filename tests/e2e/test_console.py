"""The web console (``broker.console``) in headless Chromium against a live broker with
data: the overview lists the broker, the quorum and a topic with its partition count;
the topic's page shows each partition's leader, ISR and offsets; the groups page shows a
committed group's offsets and lag; an unknown topic is a 404 page. The console shares the
metrics port (as ``make run`` has it), and ``/metrics`` still answers there."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_metrics import free_port
from tests.support.broker import BrokerProcess
from tests.support.browser import headless_chromium
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

TIMEOUT = 20.0


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(console base URL, topic, group) of a broker with data."""
    port = free_port()
    base = tmp_path_factory.mktemp("console")
    node = BrokerProcess(base / "node", {**BROKER_DEFAULT_OVERRIDES,
                                         "strom.metrics.address": f"127.0.0.1:{port}",
                                         "strom.console.address": f"127.0.0.1:{port}"})
    node.start()
    try:
        topic, group = f"con-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        admin.create_topics([NewTopic(topic, 3, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        for i in range(15):  # 10 records in partition 0, 5 in partition 1, none in 2
            producer.send(topic, f"v{i}".encode(), partition=0 if i < 10 else 1)
        producer.flush(TIMEOUT)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group,
                                 enable_auto_commit=False)
        tps = {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 5}
        consumer.assign(list(tps))
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in tps.items()})
        consumer.close()
        yield f"http://127.0.0.1:{port}", topic, group
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
        console: tuple[str, str, str], browser: WebDriver, tmp_path: Path) -> None:
    base, topic, _ = console
    browser.get(base + "/")
    assert browser.title == "Cluster · Strom"
    assert rows(browser, "brokers") == [{"id": "1", "state": "serving"}]
    assert "leader 1" in browser.find_element(By.ID, "quorum").text
    (row,) = [r for r in rows(browser, "topics") if r["name"] == topic]
    assert row["partitions"] == "3" and row["replication_factor"] == "1"
    assert row["under_replicated"] == "0"
    assert row["size"].endswith(" B") and row["size"] != "—"
    assert browser.save_screenshot(str(tmp_path / "overview.png"))
    browser.find_element(By.LINK_TEXT, topic).click()
    assert browser.title == f"Topic {topic} · Strom"


def test_topic_page_shows_partitions_with_offsets(
        console: tuple[str, str, str], browser: WebDriver) -> None:
    base, topic, _ = console
    browser.get(f"{base}/topics/{topic}")
    shown = rows(browser, "partitions")
    assert [(r["partition"], r["leader"], r["isr"], r["log_start_offset"],
             r["high_watermark"], r["log_end_offset"]) for r in shown] == [
        ("0", "1", "1", "0", "10", "10"), ("1", "1", "1", "0", "5", "5"),
        ("2", "1", "1", "0", "0", "0")]
    assert shown[2]["size"] == "0 B" and shown[0]["size"] != "0 B"


def test_groups_page_shows_committed_offsets_and_lag(
        console: tuple[str, str, str], browser: WebDriver) -> None:
    base, topic, group = console
    browser.get(f"{base}/groups")
    assert [(r["topic"], r["partition"], r["committed"], r["high_watermark"], r["lag"])
            for r in rows(browser, f"group-{group}")] == [
        (topic, "0", "4", "10", "6"), (topic, "1", "5", "5", "0")]
    assert "Empty" in browser.page_source  # no member is in the group


def test_unknown_topic_is_a_404_page_and_metrics_still_answer(
        console: tuple[str, str, str], browser: WebDriver) -> None:
    base, _, _ = console
    browser.get(f"{base}/topics/nope")
    assert "No topic 'nope'." in browser.find_element(By.TAG_NAME, "main").text
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{base}/topics/nope", timeout=TIMEOUT)
    assert err.value.code == 404
    with urllib.request.urlopen(f"{base}/metrics", timeout=TIMEOUT) as resp:
        assert b"strom_consumer_group_lag" in resp.read()
