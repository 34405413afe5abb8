"""``meta.properties``: the cluster id and node id of a data directory and its
``directory.id`` (KIP-858), made once and kept; an older file gains a directory id and
keeps its other keys."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from broker.broker import (
    META_FILE,
    _read_or_create_cluster_id,
    parse_directory_id,
    read_directory_id,
)


def props(data_dir: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (data_dir / META_FILE).read_text().splitlines())


def test_a_new_directory_gets_a_directory_id_that_is_kept(tmp_path: Path) -> None:
    cluster_id = _read_or_create_cluster_id(tmp_path, 1, None)
    first = props(tmp_path)
    assert first["cluster.id"] == cluster_id and first["node.id"] == "1"
    assert first["version"] == "1" and len(first["directory.id"]) == 22  # Kafka's form
    directory_id = read_directory_id(tmp_path)
    assert isinstance(directory_id, uuid.UUID)
    assert _read_or_create_cluster_id(tmp_path, 1, cluster_id) == cluster_id
    assert read_directory_id(tmp_path) == directory_id  # never remade


def test_a_wiped_directory_gets_another_id(tmp_path: Path) -> None:
    _read_or_create_cluster_id(tmp_path, 1, "c1")
    before = read_directory_id(tmp_path)
    (tmp_path / META_FILE).unlink()
    _read_or_create_cluster_id(tmp_path, 1, "c1")
    assert read_directory_id(tmp_path) != before


def test_an_older_file_gains_a_directory_id_and_keeps_its_keys(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text("version=1\ncluster.id=abc\nnode.id=2\nextra=x\n")
    assert _read_or_create_cluster_id(tmp_path, 2, None) == "abc"
    after = props(tmp_path)
    assert {k: after[k] for k in ("version", "cluster.id", "node.id", "extra")} == {
        "version": "1", "cluster.id": "abc", "node.id": "2", "extra": "x"}
    read_directory_id(tmp_path)


def test_directory_id_forms_and_damage(tmp_path: Path) -> None:
    value = uuid.uuid4()
    assert parse_directory_id(str(value)) == value
    with pytest.raises(ValueError, match="has no directory.id"):
        read_directory_id(tmp_path)
    (tmp_path / META_FILE).write_text("version=1\ncluster.id=abc\nnode.id=2\n"
                                      "directory.id=nonsense\n")
    with pytest.raises(ValueError, match="is not a UUID"):
        read_directory_id(tmp_path)
    with pytest.raises(ValueError, match="is not a UUID"):
        _read_or_create_cluster_id(tmp_path, 2, None)
