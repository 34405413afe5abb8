"""The console's pure pieces around login and actions: HTTP Basic parsing (a missing or
malformed header is a 401 asking for Basic again), the SASL mechanism a user logs in with
(PLAIN for JAAS users, else the strongest SCRAM mechanism enabled and held), CSRF tokens
bound to their user, the action forms only when there is a token (values escaped), and
the form parsing of the actions (a bad form never reaches the cluster)."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest
from aiohttp import web

from broker.console import actions, pages
from broker.console.login import mechanism_for, parse_basic
from broker.console.snapshot import Cluster, Group, TopicRow


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_credentials_parse_or_ask_again() -> None:
    assert parse_basic(basic("alice:pa:ss")) == ("alice", "pa:ss")  # ':' in a password
    assert parse_basic("basic " + base64.b64encode("é:x".encode()).decode()) == ("é", "x")
    for header in ("", "Bearer abc", "Basic", "Basic !!!", basic("no-colon"), basic(":pw")):
        with pytest.raises(web.HTTPUnauthorized) as err:
            parse_basic(header)
        assert err.value.headers["WWW-Authenticate"].startswith("Basic realm=")


def node(mechanisms: list[str], plain: dict[str, str], scram: set[tuple[str, int]]
         ) -> SimpleNamespace:
    config = SimpleNamespace(sasl_mechanism_list=mechanisms,
                             plain_users=lambda: {"SASL_PLAINTEXT": plain})
    return SimpleNamespace(config=config,
                           quorum=SimpleNamespace(image=SimpleNamespace(scram=scram)))


def test_mechanism_follows_the_listener_and_the_users_credentials() -> None:
    n = node(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], {"carol": "x"},
             {("alice", 1), ("alice", 2), ("bob", 1)})
    assert mechanism_for(n, "SASL_PLAINTEXT", "carol") == "PLAIN"
    assert mechanism_for(n, "SASL_PLAINTEXT", "alice") == "SCRAM-SHA-512"
    assert mechanism_for(n, "SASL_PLAINTEXT", "bob") == "SCRAM-SHA-256"
    assert mechanism_for(n, "SASL_PLAINTEXT", "mallory") is None
    only256 = node(["SCRAM-SHA-256"], {"carol": "x"}, {("alice", 2)})
    assert mechanism_for(only256, "SASL_PLAINTEXT", "carol") is None  # PLAIN not enabled
    assert mechanism_for(only256, "SASL_PLAINTEXT", "alice") is None  # 512 not enabled


def test_csrf_tokens_are_bound_to_the_user_and_the_process() -> None:
    users = {"a": "alice", "b": "bob"}
    one = actions.Actions(lambda _r: None, lambda r: users[r])  # type: ignore[arg-type,return-value]
    other = actions.Actions(lambda _r: None, lambda r: users[r])  # type: ignore[arg-type,return-value]
    assert one.token("a") == one.token("a")  # type: ignore[arg-type]
    assert one.token("a") != one.token("b")  # type: ignore[arg-type]
    assert one.token("a") != other.token("a")  # type: ignore[arg-type]


def test_forms_only_with_a_token_and_escaped() -> None:
    t = TopicRow('<t"', ())
    c = Cluster("c", 1, 1, 1, (1,), (), (t,))
    assert "<form" not in pages.overview(c) and "<form" not in pages.topic(c, t)
    assert "<form" not in pages.groups("c", 1, [Group("g", "Empty", "", (), ())])
    html = pages.overview(c, 'tok"<')
    assert 'value="tok&quot;&lt;"' in html and 'id="create-topic"' in html
    assert 'action="/topics/%3Ct%22/delete"' in pages.topic(c, t, "x")
    html = pages.groups("c", 1, [Group('g"<', "Empty", "", (), ())], "x")
    assert 'id="reset-g&quot;&lt;"' in html and 'action="/groups/g%22%3C/reset"' in html


def test_bad_forms_never_reach_the_cluster() -> None:
    for form, message in [({"name": ""}, "1 to 249 characters"),
                          ({"name": "x" * 250}, "1 to 249 characters"),
                          ({"name": "t", "partitions": "two"}, "whole numbers")]:
        with pytest.raises(actions.ActionError, match=message):
            actions.create_topic(None, form)  # type: ignore[arg-type]
    for form, message in [({"to": "yesterday"}, "earliest, latest or offset"),
                          ({"to": "offset", "offset": "x"}, "whole number"),
                          ({"to": "offset", "offset": "-1"}, ">= 0")]:
        with pytest.raises(actions.ActionError, match=message):
            actions.reset_group(None, "g", form)  # type: ignore[arg-type]
