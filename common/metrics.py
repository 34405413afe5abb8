"""Prometheus metrics: counters, histograms and callback gauges in one ``Registry``,
rendered in the text exposition format 0.0.4. Pure: no I/O, no clock.

Rendered families, in registration order::

    # HELP strom_requests_total Requests answered, by API.
    # TYPE strom_requests_total counter
    strom_requests_total{api="Produce"} 42
    # TYPE strom_request_seconds histogram
    strom_request_seconds_bucket{api="Produce",le="0.001"} 40   (cumulative)
    strom_request_seconds_bucket{api="Produce",le="+Inf"} 42
    strom_request_seconds_sum{api="Produce"} 0.031
    strom_request_seconds_count{api="Produce"} 42

Label values are escaped (backslash, double quote, newline). A gauge is a callback read at
render time, returning a number or ``(label values, number)`` pairs; a callback that
raises is left out of that rendering (the others still render).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence

LabelValues = tuple[str, ...]
GaugeFn = Callable[[], "float | Iterable[tuple[LabelValues, float]]"]

#: request latency buckets in seconds (0.5 ms .. 10 s)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(self.labels, k)} {_number(v)}"
                for k, v in sorted(self.values.items())]


class Histogram:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.labels = name, help_text, tuple(labels)
        self.buckets = tuple(sorted(buckets))
        #: label values -> [count per bucket (last: above every bound), sum]
        self.values: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        entry = self.values.get(label_values)
        if entry is None:
            entry = self.values[label_values] = ([0] * (len(self.buckets) + 1), [0.0])
        entry[0][bisect.bisect_left(self.buckets, value)] += 1
        entry[1][0] += value

    def lines(self) -> list[str]:
        out = []
        for key, (counts, total) in sorted(self.values.items()):
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.labels, key, le)} {running}")
            out.append(f"{self.name}_sum{_labels(self.labels, key)} {_number(total[0])}")
            out.append(f"{self.name}_count{_labels(self.labels, key)} {running}")
        return out


class Gauge:
    def __init__(self, name: str, help_text: str, fn: GaugeFn,
                 labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labels, self.fn = name, help_text, tuple(labels), fn

    def lines(self) -> list[str]:
        value = self.fn()
        if isinstance(value, (int, float)):
            return [f"{self.name} {_number(float(value))}"]
        return [f"{self.name}{_labels(self.labels, k)} {_number(v)}" for k, v in sorted(value)]


class Registry:
    """The metric families of one process; see the module doc."""

    def __init__(self) -> None:
        self._families: dict[str, Counter | Histogram | Gauge] = {}

    def _add(self, family: Counter | Histogram | Gauge) -> None:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} registered twice")
        self._families[family.name] = family

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        c = Counter(name, help_text, labels)
        self._add(c)
        return c

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
        h = Histogram(name, help_text, labels, buckets)
        self._add(h)
        return h

    def gauge(self, name: str, help_text: str, fn: GaugeFn, labels: Sequence[str] = ()) -> None:
        self._add(Gauge(name, help_text, fn, labels))

    def render(self) -> str:
        out: list[str] = []
        for family in self._families.values():
            try:
                lines = family.lines()
            except Exception:  # a gauge whose source is gone (shutting down)
                continue
            kind = {Counter: "counter", Histogram: "histogram", Gauge: "gauge"}[type(family)]
            out += [f"# HELP {family.name} {family.help}", f"# TYPE {family.name} {kind}",
                    *lines]
        return "\n".join(out) + "\n"
