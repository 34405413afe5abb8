"""HTML of the console's pages (pure: ``snapshot`` values in, a document out). Every
value is escaped; tables carry ids (``brokers``, ``topics``, ``partitions``,
``group-<id>``) and each number cell a ``data-col`` naming its column, so a page reads
the same to a person and to a test. A value this node does not know (an offset of a
partition without a replica here) shows as an em dash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode

from broker.console.browse import DECODERS, decode
from broker.console.snapshot import Cluster, Group, TopicRow
from protocol.records import Record

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;
align-items:baseline}
header a{color:#cfd8ea;text-decoration:none}header b{font-size:1.15em}
main{padding:1em 1.2em}h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;background:#fff;margin:.4em 0}
th,td{border:1px solid #d8dce3;padding:.3em .7em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.muted{color:#6b7280}
pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:60em}
form{display:flex;gap:1em;align-items:end;flex-wrap:wrap}label{display:grid;gap:.2em}
.charts{display:flex;gap:1.2em;flex-wrap:wrap}.charts figure{margin:0}
svg.chart{background:#fff;border:1px solid #d8dce3}
svg.chart polyline{fill:none;stroke:#2563eb;stroke-width:1.5}
"""


def _n(value: int | None) -> str:
    return "—" if value is None else str(value)


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1024:
        return f"{value} B"
    scaled = value / 1024
    for unit in ("KiB", "MiB"):
        if scaled < 1024:
            return f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GiB"


def _ids(values: Iterable[int]) -> str:
    return ", ".join(str(v) for v in values)


def _table(table_id: str, head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells are HTML already (escaped by the caller)."""
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return (f'<table id="{escape(table_id)}"><thead><tr>{ths}</tr></thead>'
            f"<tbody>{trs}</tbody></table>")


def _td(text: str, col: str = "", number: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("n" if number else "", css) if c)
    attrs = (f' data-col="{col}"' if col else "") + (f' class="{classes}"' if classes else "")
    return f"<td{attrs}>{escape(text)}</td>"


def layout(title: str, body: str, cluster_id: str = "") -> str:
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)} · Strom</title><style>{_CSS}</style></head><body>"
        "<header><b>Strom</b><a href=\"/\">Overview</a><a href=\"/groups\">Consumer groups</a>"
        f"<span class=\"muted\">{escape(cluster_id)}</span></header>"
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>")


def overview(c: Cluster, token: str | None = None) -> str:
    """``token``: the CSRF token of the action forms (None: actions off, no forms)."""
    served = (f"This page is served by node {c.node_id}." if c.node_id >= 0 else
              "This page is served by strom console over the Kafka protocol.")
    quorum = (f"<p id=\"quorum\">Controller quorum: leader <b>{_n(c.quorum_leader)}</b>, "
              f"epoch {c.quorum_epoch}, voters {escape(_ids(c.voters))}. {served}</p>"
              if c.voters else
              f"<p id=\"quorum\">The cluster does not describe its controller quorum "
              f"(DescribeQuorum). {served}</p>")
    brokers = _table("brokers", ["Broker", "Endpoints", "Rack", "State"], (
        [_td(str(b.broker_id), "id", True), _td(" ".join(b.endpoints)), _td(b.rack or "—"),
         _td("fenced" if b.fenced else "serving", "state", css="bad" if b.fenced else "")]
        for b in c.brokers))
    topics = _table("topics", ["Topic", "Partitions", "Replication factor",
                               "Under-replicated", "Size on this node"], (
        [f'<td data-col="name"><a href="/topics/{quote(t.name, safe="")}">{escape(t.name)}'
         "</a></td>",
         _td(str(len(t.partitions)), "partitions", True),
         _td(str(t.replication_factor), "replication_factor", True),
         _td(str(t.under_replicated), "under_replicated", True,
             "bad" if t.under_replicated else ""),
         _td(_size(t.size_bytes), "size", True)]
        for t in c.topics))
    body = (f"{quorum}<h2>Brokers ({len(c.brokers)})</h2>{brokers}"
            f"<h2>Topics ({len(c.topics)})</h2>{topics}"
            f"{create_topic_form(token) if token else ''}{live(c.node_id)}")
    return layout("Cluster", body, c.cluster_id)


def live(node_id: int, interval_ms: int = 2000) -> str:
    """The live charts (drawn by ``static/live.js`` from ``/api/stats``)."""
    def chart(series: str, title: str) -> str:
        return (f'<figure><figcaption>{escape(title)}: <b id="rate-{series}">…</b>'
                f'</figcaption><svg class="chart" data-series="{series}" width="300" '
                'height="60" viewBox="0 0 300 60"><polyline points=""/></svg></figure>')

    whose = (f"Traffic through node {node_id}" if node_id >= 0 else
             "Records and bytes stored, from the leaders' offsets and sizes")
    charts = "".join(chart(s, t) for s, t in (
        ("bytes_in", "Produced"), ("messages_in", "Records in"), ("bytes_out", "Consumed"),
        ("under_replicated", "Under-replicated partitions (cluster)")))
    rates = _table("topic-rates", ["Topic", "Bytes in", "Records in", "Bytes out"], [])
    return (f'<h2>Live</h2><div id="live" data-interval="{interval_ms}">'
            f'<p class="muted">{whose}, every '
            f'{interval_ms / 1000:g} s. <span id="live-error" class="bad"></span></p>'
            f'<div class="charts">{charts}</div>{rates}</div>'
            '<script src="/static/live.js"></script>')


def topic(c: Cluster, t: TopicRow, token: str | None = None) -> str:
    def browse(partition: int) -> str:
        href = f"/topics/{quote(t.name, safe='')}/messages?partition={partition}"
        return f'<td><a href="{escape(href)}">browse</a></td>'

    rows = (
        [_td(str(p.partition), "partition", True), _td(_n(p.leader), "leader", True),
         _td(_ids(p.replicas), "replicas"),
         _td(_ids(p.isr), "isr", css="bad" if p.under_replicated else ""),
         _td(_n(p.log_start_offset), "log_start_offset", True),
         _td(_n(p.high_watermark), "high_watermark", True),
         _td(_n(p.log_end_offset), "log_end_offset", True),
         _td(_size(p.size_bytes), "size", True), browse(p.partition)]
        for p in t.partitions)
    table = _table("partitions", ["Partition", "Leader", "Replicas", "ISR", "Log start",
                                  "High watermark", "Log end", "Size", "Messages"], rows)
    note = ("<p class=\"muted\">Offsets and sizes are those of this node's replica "
            "(— where it has none).</p>" if c.node_id >= 0 else
            "<p class=\"muted\">Offsets from ListOffsets, sizes from DescribeLogDirs, "
            "both of the leader (a client is not told log end offsets: —).</p>")
    forms = _form("delete-topic", f"/topics/{quote(t.name, safe='')}/delete", token,
                  "", f"Delete topic {t.name}") if token else ""
    return layout(f"Topic {t.name}", table + note + forms, c.cluster_id)


def groups(cluster_id: str, node_id: int, gs: Sequence[Group], token: str | None = None
           ) -> str:
    whose = f"The groups node {node_id} coordinates" if node_id >= 0 else "Every group"
    parts = [f"<p class=\"muted\">{whose}; lag is the high "
             "watermark minus the committed offset.</p>"]
    if not gs:
        parts.append("<p id=\"no-groups\">No consumer groups.</p>")
    for g in gs:
        members = ", ".join(g.members) or "none"
        parts.append(
            f"<h2>{escape(g.group_id)}</h2><p>State <b data-col=\"state\">{escape(g.state)}"
            f"</b>, protocol {escape(g.protocol or '—')}, members: {escape(members)}</p>")
        if token:
            parts.append(reset_group_form(g.group_id, token))
        if not g.offsets:
            parts.append("<p class=\"muted\">No committed offsets.</p>")
            continue
        parts.append(_table(f"group-{g.group_id}", ["Topic", "Partition", "Committed",
                                                    "High watermark", "Lag"], (
            [_td(o.topic, "topic"), _td(str(o.partition), "partition", True),
             _td(str(o.committed), "committed", True),
             _td(_n(o.high_watermark), "high_watermark", True),
             _td(_n(o.lag), "lag", True)]
            for o in g.offsets)))
    return layout("Consumer groups", "".join(parts), cluster_id)


def _form(form_id: str, action: str, token: str | None, fields: str, button: str) -> str:
    return (f'<form id="{escape(form_id)}" method="post" action="{escape(action)}">'
            f'<input type="hidden" name="csrf" value="{escape(token or "")}">{fields}'
            f'<button type="submit">{escape(button)}</button></form>')


def create_topic_form(token: str) -> str:
    fields = ('<label>Name<input name="name" required></label>'
              '<label>Partitions<input name="partitions" size="4" value="1"></label>'
              '<label>Replication factor<input name="replication_factor" size="4" '
              'placeholder="default"></label>')
    return "<h2>Create a topic</h2>" + _form("create-topic", "/actions/topics", token,
                                             fields, "Create")


def reset_group_form(group_id: str, token: str) -> str:
    """Reset every committed offset of the group: to the earliest or latest offset of
    each partition, or to one offset (the group must have no members)."""
    fields = ('<label>Reset offsets to<select name="to"><option value="earliest">earliest'
              '</option><option value="latest">latest</option><option value="offset">'
              'offset</option></select></label>'
              '<label>Offset<input name="offset" size="8"></label>')
    return _form(f"reset-{group_id}", f"/groups/{quote(group_id, safe='')}/reset", token,
                 fields, "Reset offsets")


def action_result(title: str, message: str, ok: bool) -> str:
    css = "" if ok else ' class="bad"'
    return layout(title, f'<p id="action-result"{css}>{escape(message)}</p>'
                  '<p><a href="/">Back to the overview</a></p>')


def not_found(what: str) -> str:
    return layout("Not found", f"<p>{escape(what)}</p>")


@dataclass(frozen=True, slots=True)
class BrowseQuery:
    """What the message browser was asked: a partition, where to start (an offset, a
    time in ms since the epoch, or neither: the latest records), how many, how shown."""

    partition: int = 0
    offset: int | None = None
    timestamp_ms: int | None = None
    limit: int = 20
    decoder: str = "utf8"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _shown(data: bytes | None, how: str, col: str) -> str:
    text, fell_back = decode(data, how)
    note = ' title="not valid in the chosen form: shown as it decodes"' if fell_back else ""
    css = ' class="muted"' if data is None else ""
    return f'<td data-col="{col}"{note}{css}><pre>{escape(text)}</pre></td>'


def messages(cluster_id: str, topic_name: str, partitions: Sequence[int], q: BrowseQuery,
             records: Sequence[Record], error: str = "") -> str:
    """The message browser: a form, then the records (or ``error``)."""
    part_opts = "".join(
        f'<option value="{p}"{" selected" if p == q.partition else ""}>{p}</option>'
        for p in partitions)
    dec_opts = "".join(
        f'<option value="{d}"{" selected" if d == q.decoder else ""}>{d}</option>'
        for d in DECODERS)
    form = (
        '<form id="browse" method="get">'
        f'<label>Partition<select name="partition">{part_opts}</select></label>'
        '<label>From offset<input name="offset" size="10" '
        f'value="{"" if q.offset is None else q.offset}"></label>'
        '<label>or from time (ms or ISO 8601)<input name="timestamp" size="24" '
        f'value="{"" if q.timestamp_ms is None else _when(q.timestamp_ms)}"></label>'
        f'<label>Records<input name="limit" size="4" value="{q.limit}"></label>'
        f'<label>Show as<select name="decode">{dec_opts}</select></label>'
        '<button type="submit">Read</button></form>')
    if error:
        body = f'<p id="browse-error" class="bad">{escape(error)}</p>'
    elif not records:
        body = '<p id="no-records">No records there.</p>'
    else:
        body = _table("records", ["Offset", "Timestamp", "Key", "Value", "Headers"], (
            [_td(str(r.offset), "offset", True), _td(_when(r.timestamp), "timestamp"),
             _shown(r.key, q.decoder, "key"), _shown(r.value, q.decoder, "value"),
             '<td data-col="headers"><pre>' + escape("\n".join(
                 f"{k}: {decode(v, q.decoder)[0]}" for k, v in r.headers)) + "</pre></td>"]
            for r in records))
        last = records[-1].offset + 1
        more = urlencode({"partition": q.partition, "offset": last, "limit": q.limit,
                          "decode": q.decoder})
        body += f'<p><a id="next" href="?{escape(more)}">Next records from {last}</a></p>'
    note = ("<p class=\"muted\">Records up to the high watermark of the partition, "
            "as a read_uncommitted consumer sees them; transaction markers left out.</p>")
    title = f"Messages of {topic_name}"
    return layout(title, form + body + note, cluster_id)
