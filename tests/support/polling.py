"""Bounded polling loops for tests that wait on a broker (nothing here sleeps as an
assertion: the callers assert what they waited for).

- ``wait_for(condition, timeout, interval)``: call ``condition()`` until it is true or
  ``timeout`` seconds passed, sleeping ``interval`` between calls; whether it became true.
- ``read_until_quiet(poll, expect, timeout, quiet)``: call ``poll()`` (one bounded consumer
  poll returning the values it got, possibly none) and collect its values until ``expect``
  arrived and then ``quiet`` seconds more, so a record too many is seen by the caller;
  stops at ``timeout`` with what it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def wait_for(condition: Callable[[], object], timeout: float,
             interval: float = 0.1) -> bool:
    """See the module doc."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def read_until_quiet(poll: Callable[[], Iterable[bytes]], expect: int, timeout: float,
                     quiet: float = 0.5) -> list[bytes]:
    """See the module doc."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        got += poll()
        if len(got) >= expect:
            quiet_until = quiet_until or time.monotonic() + quiet
            if time.monotonic() > quiet_until:
                break
    return got
