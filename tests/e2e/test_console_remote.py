"""``strom console --bootstrap-server``: the web console of ``broker.console`` for a cluster
asked over the Kafka protocol (``broker.console.remote``), in headless Chromium against a
live broker with data: the overview lists the broker and the topic, the topic page shows
each partition's leader, ISR, log start, high watermark and the leader's size, the groups
page a committed group's offsets and lag, and the message browser a record's key, value
and header read with Fetch; the live stats poll counts records as they are produced."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_console import browser, rows  # noqa: F401 - the shared browser fixture
from tests.e2e.test_metrics import free_port
from tests.support.broker import BrokerProcess
from tests.support.browser import follow
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0


class Remote(NamedTuple):
    base: str
    topic: str
    group: str
    bootstrap: str
    own: str  # the broker's own console (in-process values), actions on


def start_console(bootstrap: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """A ``strom console`` process on a free port and its URL (without the final /)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker", "console", "-b", bootstrap, "--listen",
         "127.0.0.1:0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("console on http://"):
        proc.kill()
        raise AssertionError(f"strom console did not start: {line!r} "
                             f"{proc.stderr.read() if proc.stderr else ''}")
    return proc, line.split()[-1].rstrip("/")


def stop_console(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    own = free_port()
    node = BrokerProcess(tmp_path_factory.mktemp("remote"), {
        **BROKER_DEFAULT_OVERRIDES, "strom.console.address": f"127.0.0.1:{own}",
        "strom.console.actions.enabled": "true"})
    node.start()
    try:
        topic, group = f"rc-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        admin.create_topics([NewTopic(topic, 2, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        for i in range(7):  # 4 records in partition 0, 3 in partition 1
            producer.send(topic, f"v{i}".encode(), key=f"k{i}".encode(),
                          partition=0 if i < 4 else 1, headers=[("h", f"x{i}".encode())])
        producer.flush(TIMEOUT)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group,
                                 enable_auto_commit=False)
        tps = {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 3}
        consumer.assign(list(tps))
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in tps.items()})
        consumer.close()
        proc, base = start_console(node.bootstrap)
        try:
            yield Remote(base, topic, group, node.bootstrap, f"http://127.0.0.1:{own}")
        finally:
            stop_console(proc)
        node.stop()
    finally:
        node.close()


def test_remote_console_shows_topics_partitions_and_lag(
        remote: Remote, browser: WebDriver) -> None:  # noqa: F811
    browser.get(remote.base + "/")
    assert rows(browser, "brokers") == [{"id": "1", "state": "serving"}]
    assert "over the Kafka protocol" in browser.find_element(By.ID, "quorum").text
    assert "leader 1" in browser.find_element(By.ID, "quorum").text  # DescribeQuorum
    (row,) = [r for r in rows(browser, "topics") if r["name"] == remote.topic]
    assert (row["partitions"], row["replication_factor"], row["under_replicated"]) == (
        "2", "1", "0")
    follow(browser, browser.find_element(By.LINK_TEXT, remote.topic))
    shown = rows(browser, "partitions")
    assert [(r["partition"], r["leader"], r["isr"], r["log_start_offset"],
             r["high_watermark"], r["log_end_offset"]) for r in shown] == [
        ("0", "1", "1", "0", "4", "—"), ("1", "1", "1", "0", "3", "—")]
    assert all(r["size"].endswith(" B") and r["size"] != "0 B" for r in shown)
    browser.get(remote.base + "/groups")
    assert [(r["topic"], r["partition"], r["committed"], r["high_watermark"], r["lag"])
            for r in rows(browser, f"group-{remote.group}")] == [
        (remote.topic, "0", "1", "4", "3"), (remote.topic, "1", "3", "3", "0")]


def test_remote_console_browses_messages_with_fetch(
        remote: Remote, browser: WebDriver) -> None:  # noqa: F811
    browser.get(f"{remote.base}/topics/{remote.topic}")
    follow(browser, browser.find_elements(By.LINK_TEXT, "browse")[1])  # partition 1: latest
    assert [(r["offset"], r["key"], r["value"], r["headers"])
            for r in rows(browser, "records")] == [
        ("0", "k4", "v4", "h: x4"), ("1", "k5", "v5", "h: x5"), ("2", "k6", "v6", "h: x6")]
    browser.get(f"{remote.base}/topics/{remote.topic}/messages?partition=0&offset=2&decode=hex")
    assert [(r["offset"], r["value"]) for r in rows(browser, "records")] == [
        ("2", "76 32"), ("3", "76 33")]
    follow(browser, browser.find_element(By.ID, "next"))
    assert browser.find_element(By.ID, "no-records").text == "No records there."


def test_remote_console_stats_count_records_as_they_arrive(remote: Remote) -> None:
    def stats() -> dict[str, object]:
        with urllib.request.urlopen(remote.base + "/api/stats", timeout=TIMEOUT) as resp:
            return json.loads(resp.read())

    before = stats()["messages_in"][remote.topic]  # type: ignore[index]
    producer = KafkaProducer(bootstrap_servers=remote.bootstrap, acks="all")
    producer.send(remote.topic, b"more", partition=1)
    producer.flush(TIMEOUT)
    producer.close()
    deadline = time.monotonic() + TIMEOUT
    while stats()["messages_in"][remote.topic] != before + 1:  # type: ignore[index]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert stats()["under_replicated"] == 0


def test_remote_console_refuses_to_start_without_a_cluster() -> None:
    done = subprocess.run([sys.executable, "-m", "broker", "console", "-b", "127.0.0.1:1",
                           "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 1
    assert done.stderr.startswith("strom: no broker at 127.0.0.1:1")


def form_post(url: str, fields: dict[str, str], auth: str | None = None,
              origin: str | None = None) -> tuple[int, str]:
    """POST a form without following redirects: (status, body)."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    if auth:
        request.add_header("Authorization", auth)
    if origin:
        request.add_header("Origin", origin)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=TIMEOUT) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_read_only_console_has_no_forms_and_refuses_posts(
        remote: Remote, browser: WebDriver) -> None:  # noqa: F811
    browser.get(remote.base + "/")
    assert not browser.find_elements(By.ID, "create-topic")
    status, _ = form_post(remote.base + "/actions/topics", {"name": "x"})
    assert status in (404, 405)  # no such route: nothing was created


def submit(browser: WebDriver, button: object, url: str) -> None:  # noqa: F811
    """Click a form's ``button``, wait for the page it leads to, and check that its POST
    redirected the browser to the path of ``url`` (credentials in the URL may or may not
    be shown back)."""
    follow(browser, button, TIMEOUT)  # type: ignore[arg-type]
    assert urllib.parse.urlsplit(browser.current_url).path == urllib.parse.urlsplit(url).path


@pytest.fixture(scope="module")
def acting(remote: Remote) -> Iterator[str]:
    proc, base = start_console(remote.bootstrap, "--enable-actions")
    try:
        yield base
    finally:
        stop_console(proc)


def test_actions_create_and_delete_a_topic_and_reset_a_group(
        remote: Remote, acting: str, browser: WebDriver) -> None:  # noqa: F811
    created = f"made-{uuid.uuid4().hex[:6]}"
    browser.get(acting + "/")
    form = browser.find_element(By.ID, "create-topic")
    form.find_element(By.NAME, "name").send_keys(created)
    form.find_element(By.NAME, "partitions").clear()
    form.find_element(By.NAME, "partitions").send_keys("3")
    submit(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"), acting + "/")
    (row,) = [r for r in rows(browser, "topics") if r["name"] == created]
    assert row["partitions"] == "3"
    browser.get(f"{acting}/topics/{created}")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#delete-topic button"),
           acting + "/")
    deadline = time.monotonic() + TIMEOUT
    while any(r["name"] == created for r in rows(browser, "topics")):
        assert time.monotonic() < deadline
        time.sleep(0.3)
        browser.refresh()
    browser.get(acting + "/groups")  # the group has no members: it may be reset
    submit(browser, browser.find_element(
        By.CSS_SELECTOR, f"form[id='reset-{remote.group}'] button"), acting + "/groups")
    assert [(r["partition"], r["committed"]) for r in rows(browser, f"group-{remote.group}")
            ] == [("0", "0"), ("1", "0")]  # to earliest (the default choice)
    form = browser.find_element(By.ID, f"reset-{remote.group}")
    form.find_element(By.CSS_SELECTOR, "option[value=offset]").click()
    form.find_element(By.NAME, "offset").send_keys("2")
    submit(browser, form.find_element(By.CSS_SELECTOR, "button"), acting + "/groups")
    assert [(r["partition"], r["committed"]) for r in rows(browser, f"group-{remote.group}")
            ] == [("0", "2"), ("1", "2")]


def test_actions_need_the_csrf_token_and_a_valid_form(remote: Remote, acting: str) -> None:
    name = f"forged-{uuid.uuid4().hex[:6]}"
    status, body = form_post(acting + "/actions/topics", {"name": name, "csrf": "guess"})
    assert status == 403 and "CSRF token" in body
    with urllib.request.urlopen(acting + "/", timeout=TIMEOUT) as resp:
        page = resp.read().decode()
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    for origin in ("http://evil.example", "null"):  # the right token, another site
        status, body = form_post(acting + "/actions/topics", {"name": name, "csrf": token},
                                 origin=origin)
        assert status == 403 and "may not act" in body
    status, body = form_post(acting + "/actions/topics",
                             {"name": name, "partitions": "x", "csrf": token})
    assert status == 400 and "whole numbers" in body
    status, body = form_post(acting + "/actions/topics",
                             {"name": remote.topic, "csrf": token})
    assert status == 400 and "TOPIC_ALREADY_EXISTS" in body
    consumer = KafkaConsumer(bootstrap_servers=remote.bootstrap)
    assert name not in consumer.topics()
    consumer.close()


def test_the_brokers_own_console_acts_through_its_listener(remote: Remote) -> None:
    base = remote.own
    with urllib.request.urlopen(base + "/", timeout=TIMEOUT) as resp:
        page = resp.read().decode()
    assert "served by node 1" in page  # in-process values
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    name = f"own-{uuid.uuid4().hex[:6]}"
    status, _ = form_post(base + "/actions/topics",
                          {"name": name, "partitions": "2", "csrf": token})
    assert status == 303
    deadline = time.monotonic() + TIMEOUT  # the node's image follows the controller's
    while f'href="/topics/{name}"' not in urllib.request.urlopen(
            base + "/", timeout=TIMEOUT).read().decode():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    consumer = KafkaConsumer(bootstrap_servers=remote.bootstrap)
    assert consumer.partitions_for_topic(name) == {0, 1}
    consumer.close()


def test_remote_console_shows_a_kip848_groups_lag(
        remote: Remote, browser: WebDriver) -> None:  # noqa: F811
    """DescribeGroups knows classic groups only: a consumer-protocol group is listed with
    the state ListGroups gives and its committed offsets and lag."""
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as Tp

    group = f"kip848-{uuid.uuid4().hex[:6]}"
    consumer = Consumer({"bootstrap.servers": remote.bootstrap, "group.id": group,
                         "group.protocol": "consumer", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([remote.topic])
        deadline = time.monotonic() + TIMEOUT
        while not consumer.assignment():
            assert time.monotonic() < deadline, "never assigned"
            consumer.poll(0.2)
        consumer.commit(offsets=[Tp(remote.topic, 0, 3)], asynchronous=False)
        browser.get(remote.base + "/groups")
        assert [(r["partition"], r["committed"], r["lag"])
                for r in rows(browser, f"group-{group}")] == [("0", "3", "1")]
        section = browser.find_element(By.XPATH, f"//h2[text()='{group}']/following::p[1]")
        assert "Stable" in section.text and "consumer" in section.text
    finally:
        consumer.close()
