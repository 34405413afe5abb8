"""The metadata state machine behind the Raft log: committed entries in, images out.

``MetadataLoader`` is what both a controller and a broker run on their copy of
``__cluster_metadata``: the Raft core hands over committed entries (``Ready.committed``)
and, for a follower that fell far behind, a snapshot (``Ready.snapshot`` with
``snapshot_received``); the loader folds them into the current ``MetadataImage``.
Control entries (the quorum's LeaderChange) carry no metadata and are skipped.
``snapshot()`` serializes the current image for ``RaftCore.snapshot_taken``.

Contract: entries arrive in offset order without gaps after the last applied offset (or
the loaded snapshot); anything else is a bug in the caller and raises ``MetadataError``.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.metadata.codec import MetadataDecodeError, decode_batch
from controller.metadata.image import (
    MetadataError,
    MetadataImage,
    apply_all,
    decode_image,
    encode_image,
)
from controller.raft.types import Entry, Snapshot, SnapshotId


class MetadataLoader:
    def __init__(self, image: MetadataImage | None = None) -> None:
        self.image = image or MetadataImage()
        self.last_epoch = -1  # epoch of the last applied entry (for snapshot ids)

    @property
    def next_offset(self) -> int:
        return self.image.offset + 1

    def load_snapshot(self, snapshot: Snapshot) -> MetadataImage:
        image = decode_image(snapshot.data)
        if image.offset != snapshot.snapshot_id.end_offset - 1:
            raise MetadataError(f"snapshot {snapshot.snapshot_id} holds an image at offset "
                                f"{image.offset}")
        self.image = image
        self.last_epoch = snapshot.snapshot_id.epoch
        return image

    def apply_entries(self, entries: Iterable[Entry]) -> MetadataImage:
        for entry in entries:
            if entry.offset != self.next_offset:
                raise MetadataError(f"entry at offset {entry.offset}, expected "
                                    f"{self.next_offset}")
            if entry.control:
                records = []
            else:
                try:
                    records = decode_batch(entry.payload)
                except MetadataDecodeError as exc:
                    raise MetadataError(f"entry {entry.offset} is not a metadata batch: "
                                        f"{exc}") from exc
            self.image = apply_all(self.image, records, entry.offset)
            self.last_epoch = entry.epoch
        return self.image

    def snapshot(self) -> Snapshot:
        """The current image as a Raft snapshot (ends after the last applied entry)."""
        sid = SnapshotId(self.image.offset + 1, self.last_epoch)
        return Snapshot(sid, encode_image(self.image))
