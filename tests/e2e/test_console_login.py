"""The broker's console with security on (``broker.console.login``): a broker with a
SASL_PLAINTEXT SCRAM listener, the StandardAuthorizer (``super.users`` = User:admin) and
``strom.console.actions.enabled``. In headless Chromium the super user logs in with HTTP
Basic, creates a topic from the form and sees it listed; a user without ACLs sees no
topic and is refused the same action (403, TOPIC_AUTHORIZATION_FAILED, nothing created);
no login or a wrong password is a 401 asking for Basic credentials."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_console import rows
from tests.e2e.test_console_remote import form_post, start_console, stop_console, submit
from tests.e2e.test_metrics import free_port
from tests.support.broker import BrokerProcess
from tests.support.browser import headless_chromium

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0
USERS = {"admin": "admin-secret", "bob": "bob-secret"}
SHARED = "shared"  # a topic admin made, bob may not describe


class Secured(NamedTuple):
    port: int
    bootstrap: str


def admin_config(bootstrap: str) -> dict[str, str]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "admin",
            "sasl.password": USERS["admin"]}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(url: str, auth: str | None = None) -> tuple[int, str, str]:
    """(status, body, WWW-Authenticate)."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            return resp.status, resp.read().decode(), ""
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers.get("WWW-Authenticate", "")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    port = free_port()
    node = BrokerProcess(tmp_path_factory.mktemp("console-login"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256",
        "strom.add.scram": ";".join(f"SCRAM-SHA-256=[name={u},password={p}]"
                                    for u, p in USERS.items()),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "num.partitions": "1", "offsets.topic.num.partitions": "1",
        "strom.console.address": f"127.0.0.1:{port}",
        "strom.console.actions.enabled": "true",
    })
    node.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT  # bootstrap users land just after startup
        while get(base + "/", basic("admin", USERS["admin"]))[0] != 200:
            assert time.monotonic() < deadline, "admin never logged in to the console"
            time.sleep(0.2)
        admin = AdminClient(admin_config(node.bootstrap))
        for f in admin.create_topics([NewTopic(SHARED, 1, 1)]).values():
            f.result(TIMEOUT)
        yield Secured(port, node.bootstrap)
        node.stop()
    finally:
        node.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-login"))
    try:
        yield driver
    finally:
        driver.quit()


def test_an_authorized_user_creates_a_topic_from_the_form(
        secured: Secured, browser: WebDriver, tmp_path: Path) -> None:
    name = f"by-admin-{uuid.uuid4().hex[:6]}"
    browser.get(f"http://admin:{USERS['admin']}@127.0.0.1:{secured.port}/")
    form = browser.find_element(By.ID, "create-topic")
    form.find_element(By.NAME, "name").send_keys(name)
    submit(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"),
           f"http://127.0.0.1:{secured.port}/")
    (row,) = [r for r in rows(browser, "topics") if r["name"] == name]
    assert row["partitions"] == "1"
    assert browser.save_screenshot(str(tmp_path / "logged-in.png"))
    admin = AdminClient(admin_config(secured.bootstrap))
    assert name in admin.list_topics(timeout=TIMEOUT).topics


def test_an_unauthorized_user_sees_nothing_and_is_refused(secured: Secured) -> None:
    base = f"http://127.0.0.1:{secured.port}"
    admin_page = get(base + "/", basic("admin", USERS["admin"]))[1]
    assert f'href="/topics/{SHARED}"' in admin_page
    status, page, _ = get(base + "/", basic("bob", USERS["bob"]))
    assert status == 200 and "Topics (0)" in page  # no DESCRIBE on any topic
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    name = f"by-bob-{uuid.uuid4().hex[:6]}"
    status, body = form_post(base + "/actions/topics", {"name": name, "csrf": token},
                             basic("bob", USERS["bob"]))
    assert status == 403 and "TOPIC_AUTHORIZATION_FAILED" in body
    admin_token = admin_page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert admin_token != token  # a token is bound to its user
    assert name not in get(base + "/", basic("admin", USERS["admin"]))[1]


def test_no_login_or_a_wrong_password_is_a_401(secured: Secured) -> None:
    base = f"http://127.0.0.1:{secured.port}"
    for path in ("/", "/groups", "/api/stats", "/static/live.js"):
        status, _, challenge = get(base + path)
        assert status == 401 and challenge.startswith("Basic")
    status, _, challenge = get(base + "/", basic("admin", "wrong"))
    assert status == 401 and challenge.startswith("Basic")
    status, _, _ = get(base + "/", basic("mallory", "x"))
    assert status == 401
    status, _ = form_post(base + "/actions/topics", {"name": "x"})
    assert status == 401


def test_strom_console_login_applies_each_users_acls(secured: Secured) -> None:
    proc, base = start_console(secured.bootstrap, "--login", "--sasl-mechanism",
                               "SCRAM-SHA-256", "--enable-actions")
    try:
        status, _, challenge = get(base + "/")
        assert status == 401 and challenge.startswith("Basic")
        assert get(base + "/", basic("admin", "wrong"))[0] == 401
        status, page, _ = get(base + "/", basic("admin", USERS["admin"]))
        assert status == 200 and f'href="/topics/{SHARED}"' in page
        status, page, _ = get(base + "/", basic("bob", USERS["bob"]))
        assert status == 200 and "Topics (0)" in page
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        status, body = form_post(base + "/actions/topics", {"name": "by-bob", "csrf": token},
                                 basic("bob", USERS["bob"]))
        assert status == 403 and "TOPIC_AUTHORIZATION_FAILED" in body
    finally:
        stop_console(proc)
