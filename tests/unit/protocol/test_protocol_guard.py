"""The length guard that runs before kio's native decoder.

kio pre-allocates arrays from wire counts, so an absurd count in a tiny request used to
abort the whole process (Rust OOM). The guard must reject every such body and accept
every well-formed one.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_writer
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
)

from broker.handlers import build_registry
from protocol.build import build
from protocol.codec import DecodeError, decode_request
from protocol.guard import GuardError, check_body
from protocol.records import Record, build_batch

ALL_REQUESTS = [(key, version) for key, name in sorted(api_key_map.items())
                for version in sorted(schema_name_map[name])]


def _encode(body: object) -> bytes:
    buf = io.BytesIO()
    entity_writer(type(body))(buf, body)
    return buf.getvalue()


def _sample_values(cls: type, depth: int = 0) -> dict[str, Any]:
    """Values with two elements in every array the schema reaches, "xy" in every string,
    a record batch in every bytes/records field (schema-driven, so valid for any API)."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        fc = classify_field(f)
        kafka_type = f.metadata.get("kafka_type")
        if isinstance(fc, EntityTupleField):
            values[f.name] = [_sample_values(fc.type_, depth + 1)] * 2 if depth < 4 else []
        elif isinstance(fc, EntityField):
            values[f.name] = _sample_values(fc.type_, depth + 1)
        elif isinstance(fc, PrimitiveTupleField):
            values[f.name] = ["xy", "z"] if kafka_type == "string" else \
                ([] if kafka_type == "uuid" else [1, 2])
        elif kafka_type == "string":
            values[f.name] = "xy"
        elif kafka_type in ("bytes", "records"):
            values[f.name] = BATCH
    return values


BATCH = build_batch([Record(0, 1, b"k", b"v", [])])


@pytest.mark.parametrize(("api_key", "version"), ALL_REQUESTS)
def test_well_formed_requests_pass(api_key: int, version: int) -> None:
    cls = load_request_schema(api_key, version)
    for body in (build(cls, {}), build(cls, _sample_values(cls))):
        data = _encode(body)
        check_body(cls, data, 0)
        check_body(cls, b"prefix" + data, 6)


@pytest.mark.parametrize(("api_key", "version"), [(3, 12), (9, 8), (61, 0), (1, 4), (0, 9)])
def test_absurd_counts_are_rejected(api_key: int, version: int) -> None:
    cls = load_request_schema(api_key, version)
    flexible = cls.__flexible__
    huge = b"\x88\xd1\xf9\x8d\x34" if flexible else (2**31 - 1).to_bytes(4, "big")
    for prefix in (b"", b"\x00" * 2, b"\x00" * 4, b"\x00" * 16):
        body = prefix + huge + b"\x00" * 30
        with pytest.raises(GuardError):
            check_body(cls, body, 0)
            raise GuardError("schema happened to parse; try the next prefix")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted({(k, v) for k, lo, hi in build_registry().advertised()
                               for v in range(max(lo, 3) if k == 0 else lo, hi + 1)})),
       st.binary(max_size=80))
def test_random_bodies_never_reach_kio_with_impossible_counts(kv: tuple[int, int],
                                                              junk: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_request(kv[0], kv[1], junk, 0)


def test_fuzz_corpus_no_longer_aborts_the_process() -> None:
    """Bodies that aborted the interpreter before the guard (found by fuzzing)."""
    code = (
        "from protocol.codec import decode_request, DecodeError\n"
        "cases = [(9, 8, '88d1f98d3469473d8b68ae40242fd404a76d6b23b888c4d954f9e4313e75'),\n"
        "         (61, 0, 'dee6a9be37511d35f4f8cd4cdf5a2c3257e16eed1b3a756d8a8ef562dcd0'),\n"
        "         (61, 0, 'f7daa8e01d887eeb54aa0f4c5de5f0a9343b0ff97bc4fce969e6223db1')]\n"
        "for k, v, h in cases:\n"
        "    try:\n"
        "        decode_request(k, v, bytes.fromhex(h), 0)\n"
        "    except DecodeError:\n"
        "        pass\n"
        "print('survived')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert b"survived" in out.stdout
