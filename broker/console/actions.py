"""The console's actions that change the cluster, when enabled
(``strom.console.actions.enabled`` on a broker, ``strom console --enable-actions``):

- ``POST /actions/topics`` (``name``, ``partitions``, ``replication_factor``: empty for
  the cluster's default) creates a topic (CreateTopics), then 303 to ``/``;
- ``POST /topics/{name}/delete`` deletes it (DeleteTopics), then 303 to ``/``;
- ``POST /groups/{id}/reset`` (``to`` = earliest | latest | offset, ``offset``) moves every
  committed offset of the group (OffsetCommit; the group must have no members), each
  clamped into [log start, high watermark] as ``kafka-consumer-groups.sh
  --reset-offsets`` does, then 303 to ``/groups``.

Every form carries a CSRF token: an HMAC, under a secret drawn when the console starts,
of the user who is logged in ("" without a login). A POST without the right token is a
403 and changes nothing; so a page of another site cannot post the console's forms with
the user's browser credentials (it cannot read the token); a POST whose ``Origin`` header
names another site (or ``null``) is refused as well. The actions are Kafka requests
sent with ``client_for(request)`` — as the logged-in user when there is a login
(``broker.console.login``) — so the cluster's authorizer decides: a refusal
(``*_AUTHORIZATION_FAILED``) is a 403 page naming it, another Kafka error a 400.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from broker.console import pages
from broker.tools.plans import reset_plan
from net.admin import EARLIEST, LATEST, Admin
from net.groups import Groups
from net.kafka_client import KafkaClient
from net.session import AuthenticationFailed, ClientError, KafkaApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_NAME = 249  # Kafka's longest topic name


class ActionError(Exception):
    """A form that does not parse (400)."""


def create_topic(client: KafkaClient, form: Mapping[str, str]) -> str:
    name = form.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        raise ActionError(f"a topic name is 1 to {MAX_NAME} characters, not {name!r}")
    try:
        partitions = int(form.get("partitions", "").strip() or "-1")
        rf_text = form.get("replication_factor", "").strip()
        replication = int(rf_text) if rf_text else -1
    except ValueError:
        raise ActionError("partitions and replication factor must be whole numbers") from None
    Admin(client).create_topic(name, partitions, replication)
    return f"Topic {name} created."


def delete_topic(client: KafkaClient, name: str) -> str:
    Admin(client).delete_topics([name])
    return f"Topic {name} deleted."


def reset_group(client: KafkaClient, group: str, form: Mapping[str, str]) -> str:
    to = form.get("to", "")
    if to not in ("earliest", "latest", "offset"):
        raise ActionError(f"reset to earliest, latest or offset, not {to!r}")
    target = 0
    if to == "offset":
        try:
            target = int(form.get("offset", "").strip())
        except ValueError:
            raise ActionError("the offset must be a whole number") from None
        if target < 0:
            raise ActionError("the offset must be >= 0")
    api = Groups(client)
    committed = api.committed(group)
    if not committed:
        raise ActionError(f"group {group!r} has no committed offsets")
    tps = sorted(committed)
    md = client.metadata(sorted({t for t, _ in tps}))
    tps = [tp for tp in tps if tp[0] in md.topics and md.topics[tp[0]].error == "NONE"]
    admin = Admin(client)
    earliest = {tp: a.offset for tp, a in admin.list_offsets(
        md, dict.fromkeys(tps, EARLIEST)).items()}
    latest = {tp: a.offset for tp, a in admin.list_offsets(
        md, dict.fromkeys(tps, LATEST)).items()}
    wanted = {"earliest": earliest, "latest": latest}.get(to) or dict.fromkeys(tps, target)
    plan = reset_plan(tps, committed, earliest, latest, wanted)
    api.commit(group, {(r.topic, r.partition): r.new for r in plan})
    return f"Offsets of group {group} reset: " + ", ".join(
        f"{r.topic}-{r.partition} {r.current} -> {r.new}" for r in plan) + "."


class Actions:
    """The action routes over ``client_for(request)`` (a new client, closed after the
    action) and ``user_of(request)`` (who is logged in; "" without a login)."""

    def __init__(self, client_for: Callable[[web.Request], KafkaClient],
                 user_of: Callable[[web.Request], str] = lambda _request: "") -> None:
        self.client_for = client_for
        self.user_of = user_of
        self._secret = secrets.token_bytes(32)

    def token(self, request: web.Request) -> str:
        """The CSRF token of the forms shown to ``request``'s user."""
        return hmac.new(self._secret, self.user_of(request).encode(),
                        hashlib.sha256).hexdigest()

    async def _act(self, request: web.Request, redirect: str,
                   action: Callable[[KafkaClient, Mapping[str, str]], str]) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return _page("Refused", f"A form posted from {origin} may not act on this "
                                    "console.", 403)
        form: Mapping[str, Any] = await request.post()
        sent = str(form.get("csrf", ""))
        if not hmac.compare_digest(sent.encode(), self.token(request).encode()):
            return _page("Refused", "The form's CSRF token is missing or wrong: reload the "
                                    "page and submit it again.", 403)
        fields = {k: str(v) for k, v in form.items()}

        def run() -> str:
            with self.client_for(request) as client:
                return action(client, fields)

        try:
            await asyncio.to_thread(run)
        except ActionError as exc:
            return _page("Bad request", str(exc), 400)
        except KafkaApiError as exc:
            status = 403 if exc.name.endswith("AUTHORIZATION_FAILED") else 400
            return _page("Refused" if status == 403 else "Failed", str(exc), status)
        except AuthenticationFailed:
            raise  # the login's business (401)
        except ClientError as exc:
            return _page("Failed", str(exc), 502)
        raise web.HTTPSeeOther(redirect)

    def add_routes(self, app: web.Application, guarded: Callable[[Handler], Handler]) -> None:
        async def create(request: web.Request) -> web.Response:
            return await self._act(request, "/", create_topic)

        async def delete(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            return await self._act(request, "/", lambda c, _f: delete_topic(c, name))

        async def reset(request: web.Request) -> web.Response:
            group = request.match_info["group"]
            return await self._act(request, "/groups", lambda c, f: reset_group(c, group, f))

        app.router.add_post("/actions/topics", guarded(create))
        app.router.add_post("/topics/{name}/delete", guarded(delete))
        app.router.add_post("/groups/{group}/reset", guarded(reset))


def _page(title: str, message: str, status: int) -> web.Response:
    return web.Response(text=pages.action_result(title, message, False), status=status,
                        content_type="text/html")
