"""What a started node tells the person who started it. Pure: values in, text out.

``StartupInfo`` gathers what ``strom serve`` knows once it listens; ``render_banner``
lays it out for a terminal (printed on stderr when the log format is console), and
``startup_fields`` gives the same facts as the fields of the structured ``strom_started``
log event (what JSON logs carry instead, so they stay one JSON object per line).

The banner (a node of one listener; the kcat line is one line)::

    Strom 0.1.0 · node 1 · broker,controller · cluster 4L6g3nShT-eMCtK--X86sw
      listener PLAINTEXT   127.0.0.1:9092  (bound 127.0.0.1:9092, PLAINTEXT)
      bootstrap            127.0.0.1:9092
      controller           127.0.0.1:19092
      metrics              http://127.0.0.1:9644/metrics
      data                 /var/lib/strom
      try                  echo hello | kcat -b 127.0.0.1:9092 -t demo -P && kcat -b ...

``bootstrap`` is the advertised address of the first client listener (any broker of a
cluster works as bootstrap); the ``try`` line uses a PLAINTEXT listener when there is
one, else the first listener with the ``-X`` settings kcat needs (SASL credentials as
placeholders). A controller-only node has no bootstrap and no ``try`` line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientListener:
    name: str
    #: what clients are told (advertised.listeners), ``host:port``
    advertised: str
    #: what the node bound, ``host:port``
    bound: str
    #: listener.security.protocol.map's protocol (PLAINTEXT, SASL_PLAINTEXT, SSL, ...)
    protocol: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class StartupInfo:
    version: str
    node_id: int
    roles: str
    cluster_id: str
    data_dir: str
    listeners: tuple[ClientListener, ...] = ()
    #: ``host:port`` of the controller listener (None: not a controller)
    controller: str | None = None
    metrics_url: str | None = None
    console_url: str | None = None


def bootstrap(info: StartupInfo) -> str | None:
    """The ``bootstrap.servers`` string to paste (None: no client listener)."""
    return info.listeners[0].advertised if info.listeners else None


def kcat_line(info: StartupInfo, topic: str = "demo") -> str | None:
    """One shell line that produces a record with kcat and consumes it back."""
    if not info.listeners:
        return None
    chosen = next((li for li in info.listeners if li.protocol == "PLAINTEXT"),
                  info.listeners[0])
    opts = f"-b {chosen.advertised}"
    if chosen.protocol != "PLAINTEXT":
        opts += f" -X security.protocol={chosen.protocol}"
        if chosen.protocol.startswith("SASL"):
            opts += " -X sasl.mechanisms=PLAIN -X sasl.username=USER -X sasl.password=PASS"
    return f"echo hello | kcat {opts} -t {topic} -P && kcat {opts} -t {topic} -C -e"


def _rows(info: StartupInfo) -> list[tuple[str, str]]:
    rows = [(f"listener {li.name}", f"{li.advertised}  (bound {li.bound}, {li.protocol})")
            for li in info.listeners]
    boot = bootstrap(info)
    if boot is not None:
        rows.append(("bootstrap", boot))
    if info.controller is not None:
        rows.append(("controller", info.controller))
    if info.metrics_url is not None:
        rows.append(("metrics", info.metrics_url))
    if info.console_url is not None:
        rows.append(("console", info.console_url))
    rows.append(("data", info.data_dir))
    line = kcat_line(info)
    if line is not None:
        rows.append(("try", line))
    return rows


def render_banner(info: StartupInfo) -> str:
    """The banner of the module doc, ending with a newline."""
    title = (f"Strom {info.version} · node {info.node_id} · {info.roles} · "
             f"cluster {info.cluster_id}")
    rows = _rows(info)
    width = max(len(label) for label, _ in rows)
    body = [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(["", title, *body, ""]) + "\n"


def startup_fields(info: StartupInfo) -> dict[str, object]:
    """The banner's facts as structured log fields (those it has)."""
    fields = {
        "bootstrap": bootstrap(info),
        "metrics_url": info.metrics_url,
        "console_url": info.console_url,
        "try": kcat_line(info),
    }
    return {k: v for k, v in fields.items() if v is not None}
