"""Prometheus instruments on ``prometheus_client``, one ``CollectorRegistry`` per owner
(no process-global registry: tests run several brokers in one process).

- ``new_registry()``: a registry holding the standard collectors (``process_*``: CPU,
  memory, open fds, start time; ``python_info``; ``python_gc_*``).
- ``LabelledCounter`` / ``LabelledHistogram``: a prometheus_client ``Counter`` /
  ``Histogram`` with one label set per call, whose children are cached in a plain dict,
  so the hot path costs one dict lookup and the child's increment (``labels()`` itself
  validates and locks on every call).
- ``CallbackGauges``: gauges read at scrape time (a callback returning a number, or
  ``(label values, number)`` pairs); a callback that raises is left out of that scrape,
  the others still render.
- ``LATENCY_BUCKETS``: request latency buckets in seconds (0.5 ms .. 10 s), finer at the
  low end than prometheus_client's defaults (a broker answers most requests in ms).

Rendering (``prometheus_client.exposition``) is the HTTP shell's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LabelValues = tuple[str, ...]
GaugeFn = Callable[[], "float | Iterable[tuple[LabelValues, float]]"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


def new_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and garbage-collector collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class LabelledCounter:
    """``inc(*label_values, amount=1.0)`` on a prometheus_client Counter."""

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str,
                 labels: Sequence[str] = ()) -> None:
        self.metric = Counter(name, help_text, tuple(labels), registry=registry)
        self._children: dict[LabelValues, Any] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        child = self._children.get(label_values)
        if child is None:
            child = self._children[label_values] = self.metric.labels(*label_values)
        child.inc(amount)


class LabelledHistogram:
    """``observe(value, *label_values)`` on a prometheus_client Histogram."""

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str,
                 labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
                 ) -> None:
        self.metric = Histogram(name, help_text, tuple(labels), registry=registry,
                                buckets=tuple(buckets))
        self._children: dict[LabelValues, Any] = {}

    def observe(self, value: float, *label_values: str) -> None:
        child = self._children.get(label_values)
        if child is None:
            child = self._children[label_values] = self.metric.labels(*label_values)
        child.observe(value)


class CallbackGauges(Collector):
    """Gauges whose values are read from callbacks when the registry is collected.

    Add every gauge with ``gauge()`` before ``register(registry)``: the registry checks
    the names against the others once, at registration.
    """

    def __init__(self) -> None:
        self._gauges: list[tuple[str, str, tuple[str, ...], GaugeFn]] = []

    def gauge(self, name: str, help_text: str, fn: GaugeFn, labels: Sequence[str] = ()
              ) -> None:
        if any(g[0] == name for g in self._gauges):
            raise ValueError(f"metric {name} registered twice")
        self._gauges.append((name, help_text, tuple(labels), fn))

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, labels, _fn in self._gauges:
            yield GaugeMetricFamily(name, help_text, labels=labels or None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, labels, fn in self._gauges:
            try:
                value = fn()
                if isinstance(value, (int, float)):
                    family = GaugeMetricFamily(name, help_text, value=float(value))
                else:
                    family = GaugeMetricFamily(name, help_text, labels=labels)
                    for label_values, number in sorted(value):
                        family.add_metric(list(label_values), float(number))
            except Exception:  # a gauge whose source is gone (shutting down)
                continue
            yield family
