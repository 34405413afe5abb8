"""The active controller's ACL decisions (Kafka's AclControlManager): CreateAcls and
DeleteAcls become AccessControlEntryRecord / RemoveAccessControlEntryRecord, so every
broker enforces the same ACLs from the metadata log.

Rules
- Creation: each ACL is checked by ``common.security.acl.validate_binding`` (a refusal is
  INVALID_REQUEST with Kafka's message, and that creation only). An ACL equal to one
  already stored, or to an earlier one in the same request, succeeds without a record
  (Kafka keeps ACLs as a set). A new ACL gets the next id of ``new_ids``.
- Deletion: each filter selects the stored ACLs it matches (``filter_matches``); a filter
  with an UNKNOWN field is INVALID_REQUEST. An ACL selected by several filters is listed
  in each result and removed once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from common.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    filter_matches,
    validate_binding,
)
from controller.metadata.image import MetadataImage
from controller.metadata.records import (
    AccessControlEntryRecord,
    MetadataRecord,
    RemoveAccessControlEntryRecord,
)
from protocol.errors import ErrorCode

NONE = 0
INVALID_REQUEST = int(ErrorCode.invalid_request.value)


@dataclass(frozen=True, slots=True)
class AclResult:
    error_code: int
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    error_code: int
    message: str | None
    #: the ACLs this filter selected (deleted)
    matches: tuple[AclBinding, ...] = ()


def create_acls(image: MetadataImage, creations: Sequence[AclBinding],
                new_ids: Iterator[uuid.UUID]) -> tuple[list[MetadataRecord], list[AclResult]]:
    """Records and one result per creation, in request order."""
    present = set(image.acls.values())
    records: list[MetadataRecord] = []
    results = []
    for b in creations:
        problem = validate_binding(b)
        if problem is not None:
            results.append(AclResult(INVALID_REQUEST, problem))
            continue
        if b not in present:
            present.add(b)
            acl_id = next(new_ids)
            while acl_id in image.acls:
                acl_id = next(new_ids)
            records.append(AccessControlEntryRecord(
                acl_id, int(b.resource_type), b.resource_name, int(b.pattern_type),
                b.principal, b.host, int(b.operation), int(b.permission)))
        results.append(AclResult(NONE))
    return records, results


def _filter_problem(f: AclFilter) -> str | None:
    if f.resource_type == ResourceType.UNKNOWN:
        return "Invalid resource type UNKNOWN"
    if f.pattern_type == PatternType.UNKNOWN:
        return "Invalid pattern type UNKNOWN"
    if f.operation == AclOperation.UNKNOWN:
        return "Invalid operation UNKNOWN"
    if f.permission == AclPermissionType.UNKNOWN:
        return "Invalid permission type UNKNOWN"
    return None


def delete_acls(image: MetadataImage, filters: Sequence[AclFilter]
                ) -> tuple[list[MetadataRecord], list[DeleteResult]]:
    """Records and one result per filter, in request order."""
    removed: set[uuid.UUID] = set()
    records: list[MetadataRecord] = []
    results = []
    for f in filters:
        problem = _filter_problem(f)
        if problem is not None:
            results.append(DeleteResult(INVALID_REQUEST, problem))
            continue
        matched = sorted(((i, b) for i, b in image.acls.items() if filter_matches(f, b)),
                         key=lambda item: str(item[0]))
        for acl_id, _ in matched:
            if acl_id not in removed:
                removed.add(acl_id)
                records.append(RemoveAccessControlEntryRecord(acl_id))
        results.append(DeleteResult(NONE, None, tuple(b for _, b in matched)))
    return records, results


def describe_acls(image: MetadataImage, f: AclFilter) -> tuple[int, str | None,
                                                               list[AclBinding]]:
    """DescribeAcls: (error code, message, the selected ACLs)."""
    problem = _filter_problem(f)
    if problem is not None:
        return INVALID_REQUEST, problem, []
    return NONE, None, [b for b in image.acls.values() if filter_matches(f, b)]
