"""The active controller's client quota decisions (Kafka's ClientQuotaControlManager):
AlterClientQuotas becomes ClientQuotaRecords, so every broker enforces the same quotas;
DescribeClientQuotas filters the image's (Kafka's ClientQuotasImage.describe, KIP-546).

Alter, per entry (each answered on its own, in request order, with its entity as sent;
an entry with any error applies nothing), INVALID_REQUEST with Kafka's message for: an
empty entity, a type given twice, an empty name, a type other than ``user`` /
``client-id`` / ``ip``, ``ip`` beside another type, an ip name that is not an IP address,
a key given twice, a key the entity does not take (``common.security.quotas.keys_for``:
``QUOTA_KEYS`` for user / client-id, ``connection_creation_rate`` for ip), a value not > 0,
a fractional or too large value for an integral key. Removing a key that is not set is a
no-op. ``validate_only``: the answers without records.

Describe: components (entity type, match type 0 = that name (not null), 1 = the default
(match null), 2 = any name or the default (match null)); every component's type must be in
a matching entity with the asked name; with ``strict`` the entity has no other types.
An empty or repeated type, a bad match or match type, an ip component beside user or
client-id: INVALID_REQUEST; a type other than user / client-id / ip: UNSUPPORTED_VERSION.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.security.quotas import (
    CLIENT_ID,
    IP,
    USER,
    Entity,
    entity_problem,
    key_problem,
    keys_for,
)
from controller.metadata.image import MetadataImage
from controller.metadata.records import ClientQuotaRecord, MetadataRecord
from protocol.errors import ErrorCode

NONE = 0
INVALID_REQUEST = int(ErrorCode.invalid_request.value)
UNSUPPORTED_VERSION = int(ErrorCode.unsupported_version.value)
MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class QuotaOp:
    key: str
    value: float
    remove: bool


@dataclass(frozen=True, slots=True)
class EntryResult:
    #: the entity as the request named it (echoed in the answer)
    entity: tuple[tuple[str, str | None], ...]
    error_code: int
    message: str | None = None


def normalized(pairs: Sequence[tuple[str, str | None]]) -> Entity:
    """The image's key of an entity: its pairs sorted by type."""
    return tuple(sorted(pairs, key=lambda p: p[0]))


def _entry_problem(pairs: tuple[tuple[str, str | None], ...], ops: Sequence[QuotaOp]
                   ) -> str | None:
    problem = entity_problem(pairs)
    if problem is not None:
        return problem
    seen: set[str] = set()
    keys = keys_for(pairs)
    for op in ops:
        if op.key in seen:
            return f"Duplicate quota key {op.key} not updating quota for this entity"
        seen.add(op.key)
        problem = key_problem(op.key, None if op.remove else op.value, keys)
        if problem is not None:
            return problem
    return None


def alter(image: MetadataImage,
          entries: Sequence[tuple[tuple[tuple[str, str | None], ...], Sequence[QuotaOp]]],
          validate_only: bool = False) -> tuple[list[MetadataRecord], list[EntryResult]]:
    """The records of the valid entries (none with ``validate_only``) and one result per
    entry."""
    records: list[MetadataRecord] = []
    results = []
    for pairs, ops in entries:
        problem = _entry_problem(pairs, ops)
        if problem is not None:
            results.append(EntryResult(pairs, INVALID_REQUEST, problem))
            continue
        if not validate_only:
            e = normalized(pairs)
            current = image.quotas.get(e, {})
            for op in ops:
                if op.remove and op.key not in current:
                    continue
                records.append(ClientQuotaRecord(e, op.key, 0.0 if op.remove else op.value,
                                                 op.remove))
        results.append(EntryResult(pairs, NONE))
    return records, results


@dataclass(frozen=True, slots=True)
class Component:
    entity_type: str
    match_type: int
    match: str | None


def _filter(components: Sequence[Component]
            ) -> tuple[int, str | None, dict[str, str | None], set[str]]:
    exact: dict[str, str | None] = {}
    any_name: set[str] = set()
    for c in components:
        t = c.entity_type
        if not t:
            return INVALID_REQUEST, "Invalid empty entity type.", exact, any_name
        if t in exact or t in any_name:
            return (INVALID_REQUEST, f"Entity type {t} cannot appear more than once in the "
                    "filter.", exact, any_name)
        if t not in (USER, CLIENT_ID, IP):
            return UNSUPPORTED_VERSION, f"Unsupported entity type {t}", exact, any_name
        if c.match_type == MATCH_EXACT:
            if c.match is None:
                return (INVALID_REQUEST, "Request specified MATCH_TYPE_EXACT, but set match "
                        "string to null.", exact, any_name)
            exact[t] = c.match
        elif c.match_type in (MATCH_DEFAULT, MATCH_ANY):
            if c.match is not None:
                name = "DEFAULT" if c.match_type == MATCH_DEFAULT else "SPECIFIED"
                return (INVALID_REQUEST, f"Request specified MATCH_TYPE_{name}, but also "
                        "specified a match string.", exact, any_name)
            if c.match_type == MATCH_DEFAULT:
                exact[t] = None
            else:
                any_name.add(t)
        else:
            return INVALID_REQUEST, f"Unknown match type {c.match_type}", exact, any_name
    named = set(exact) | any_name
    if IP in named and named & {USER, CLIENT_ID}:
        return (INVALID_REQUEST, "Invalid entity filter component combination. IP filter "
                "component should not be used with user or clientId filter component.",
                exact, any_name)
    return NONE, None, exact, any_name


def describe(image: MetadataImage, components: Sequence[Component], strict: bool
             ) -> tuple[int, str | None, list[tuple[Entity, Mapping[str, float]]]]:
    """(error code, message, matching entities with their quotas)."""
    code, message, exact, any_name = _filter(components)
    if code:
        return code, message, []
    out = []
    for e, values in sorted(image.quotas.items(), key=lambda kv: repr(kv[0])):
        names = dict(e)
        if strict and len(names) != len(exact) + len(any_name):
            continue
        if all(t in names and names[t] == n for t, n in exact.items()) and \
                all(t in names for t in any_name):
            out.append((e, values))
    return NONE, None, out
