"""The active controller's working view: committed image + its own pending proposals.

When a node becomes the quorum leader it may decide (create topics, fence brokers, ...)
only once it has applied everything earlier leaders committed, i.e. once its loader has
applied its own LeaderChange entry (``ready``). From then on every decision is made
against ``image``: the committed image with this controller's proposed-but-uncommitted
batches applied on top, so back-to-back requests see each other (a second CreateTopics
for the same name gets TOPIC_ALREADY_EXISTS even before the first commits) — Kafka's
controller keeps the same "uncommitted state".

Lifecycle (driven by the shell):
- ``propose(records, offset, token)`` after ``RaftCore.propose`` returned ``offset`` for
  the batch; ``token`` is whatever the shell uses to answer the request later.
- ``committed()`` after the loader applied new entries: the tokens whose batch is now
  committed (answer them with success), oldest first.
- ``abandon()`` when leadership is lost: the tokens of batches that may never commit
  (answer NOT_CONTROLLER; the client retries against the new controller).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.loader import MetadataLoader
from controller.metadata.records import MetadataRecord


class ActiveController:
    def __init__(self, loader: MetadataLoader, epoch_start_offset: int) -> None:
        self.loader = loader
        self.epoch_start_offset = epoch_start_offset
        self._pending: list[tuple[int, tuple[MetadataRecord, ...], Any]] = []
        self._image: MetadataImage | None = None

    @property
    def ready(self) -> bool:
        """True once the LeaderChange entry of this epoch (and so everything before it)
        has been applied: decisions made earlier could contradict committed records."""
        return self.loader.next_offset > self.epoch_start_offset

    @property
    def image(self) -> MetadataImage:
        if self._image is None:
            pending = [r for _, batch, _ in self._pending for r in batch]
            self._image = apply_all(self.loader.image, pending)
        return self._image

    def propose(self, records: Sequence[MetadataRecord], offset: int, token: Any) -> None:
        if self._pending and offset <= self._pending[-1][0]:
            raise ValueError(f"proposal offsets must increase: {offset}")
        batch = tuple(records)
        self._image = apply_all(self.image, list(batch))
        self._pending.append((offset, batch, token))

    def committed(self) -> list[Any]:
        """Tokens of the batches the loader has now applied (committed), oldest first."""
        done = [token for offset, _, token in self._pending
                if offset < self.loader.next_offset]
        if done:
            self._pending = [p for p in self._pending if p[0] >= self.loader.next_offset]
            self._image = None
        return done

    def abandon(self) -> list[Any]:
        tokens = [token for _, _, token in self._pending]
        self._pending = []
        self._image = None
        return tokens
