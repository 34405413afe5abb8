"""Kafka's ACL model and its matching rules (Kafka's ``StandardAuthorizer`` semantics). Pure.

Vocabulary and wire ids (Kafka's ``ResourceType``, ``PatternType``, ``AclOperation``,
``AclPermissionType`` codes, as carried by CreateAcls/DescribeAcls/DeleteAcls and the
metadata records):

- resource types: ANY 1, TOPIC 2, GROUP 3, CLUSTER 4 (one resource, ``kafka-cluster``),
  TRANSACTIONAL_ID 5, DELEGATION_TOKEN 6, USER 7;
- pattern types: ANY 1 and MATCH 2 (filters only), LITERAL 3, PREFIXED 4; a LITERAL name
  ``*`` matches every resource of its type;
- operations: ANY 1 (filters), ALL 2, READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
  DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
  IDEMPOTENT_WRITE 12, CREATE_TOKENS 13, DESCRIBE_TOKENS 14;
- permissions: ANY 1 (filters), DENY 2, ALLOW 3;
- principals ``Type:name`` (``User:alice``, ``User:ANONYMOUS``; ``User:*`` in an ACL
  matches every user); hosts an IP address or ``*``.

Decision (``authorize``), in Kafka's order:
1. a principal in ``super.users`` is allowed everything;
2. the ACLs that apply to the resource are those of its type whose pattern matches its
   name (LITERAL equal or ``*``, PREFIXED a prefix of the name);
3. any applicable DENY whose principal, host and operation (or ALL) match → denied
   (deny wins over allow);
4. any applicable ALLOW whose principal and host match and whose operation is the one
   asked, ALL, or one implying it → allowed. Implications (Kafka's): DESCRIBE is
   implied by READ, WRITE, DELETE and ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS;
5. otherwise, if no ACL at all applies to the resource, ``allow.everyone.if.no.acl.found``
   decides (default false); else denied.

Filters (``AclFilter``) select ACLs for DescribeAcls and DeleteAcls: ANY/None fields
match everything; pattern type MATCH selects the ACLs that would apply to the named
resource (LITERAL equal or ``*``, PREFIXED prefixes of it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


CLUSTER_NAME = "kafka-cluster"
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
ANONYMOUS = "User:ANONYMOUS"

#: operation asked -> the ALLOWed operations that also grant it (besides itself and ALL)
IMPLIED_BY: dict[AclOperation, frozenset[AclOperation]] = {
    AclOperation.DESCRIBE: frozenset({AclOperation.READ, AclOperation.WRITE,
                                      AclOperation.DELETE, AclOperation.ALTER}),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.ALTER_CONFIGS}),
}


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: who (principal, host) may or may not (permission) do what (operation) on
    which resources (type, name, pattern type)."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: AclPermissionType


@dataclass(frozen=True, slots=True)
class AclEntry:
    """An ACL as stored in the metadata image: its id (AccessControlEntryRecord.id)."""

    id: uuid.UUID
    binding: AclBinding


@dataclass(frozen=True, slots=True)
class AclFilter:
    """Selects ACLs (DescribeAcls, DeleteAcls); None / ANY fields match everything."""

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: AclPermissionType = AclPermissionType.ANY


def parse_principal(text: str) -> tuple[str, str] | None:
    """``Type:name`` → (type, name), or None when it is not of that form."""
    kind, sep, name = text.partition(":")
    if not sep or not kind or not name:
        return None
    return kind, name


def validate_binding(b: AclBinding) -> str | None:
    """Why CreateAcls must refuse ``b`` (INVALID_REQUEST), or None when it is valid."""
    if b.resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
        return f"Invalid resource type {b.resource_type.name}"
    if b.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid pattern type {b.pattern_type.name}"
    if b.operation in (AclOperation.ANY, AclOperation.UNKNOWN):
        return f"Invalid operation {b.operation.name}"
    if b.permission not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
        return f"Invalid permission type {b.permission.name}"
    if not b.resource_name:
        return "Resource name should not be empty"
    if b.resource_type == ResourceType.CLUSTER and (
            b.resource_name != CLUSTER_NAME or b.pattern_type != PatternType.LITERAL):
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if parse_principal(b.principal) is None:
        return f"Could not parse principal from `{b.principal}` (no colon is present " \
               f"separating the principal type from the principal name)"
    if not b.host:
        return "Host should not be empty"
    return None


def pattern_matches(b: AclBinding, resource_type: ResourceType, name: str) -> bool:
    """Whether ``b``'s resource pattern applies to resource ``(resource_type, name)``."""
    if b.resource_type != resource_type:
        return False
    if b.pattern_type == PatternType.LITERAL:
        return b.resource_name == name or b.resource_name == WILDCARD
    if b.pattern_type == PatternType.PREFIXED:
        return name.startswith(b.resource_name)
    return False


def filter_matches(f: AclFilter, b: AclBinding) -> bool:
    """Whether filter ``f`` selects ACL ``b``."""
    if f.resource_type not in (ResourceType.ANY, b.resource_type):
        return False
    if f.pattern_type == PatternType.MATCH:
        if f.resource_name is not None and not pattern_matches(
                b, b.resource_type, f.resource_name):
            return False
    else:
        if f.pattern_type not in (PatternType.ANY, b.pattern_type):
            return False
        if f.resource_name is not None and f.resource_name != b.resource_name:
            return False
    if f.principal is not None and f.principal != b.principal:
        return False
    if f.host is not None and f.host != b.host:
        return False
    if f.operation not in (AclOperation.ANY, b.operation):
        return False
    return f.permission in (AclPermissionType.ANY, b.permission)


@dataclass(frozen=True, slots=True)
class Action:
    """What is asked: ``principal`` from ``host`` wants ``operation`` on a resource."""

    principal: str
    host: str
    operation: AclOperation
    resource_type: ResourceType
    resource_name: str


def _who_matches(b: AclBinding, action: Action) -> bool:
    return b.principal in (action.principal, WILDCARD_PRINCIPAL) \
        and b.host in (action.host, WILDCARD)


def authorize(acls: Iterable[AclBinding], action: Action, *,
              super_users: frozenset[str] = frozenset(),
              allow_if_no_acl: bool = False) -> bool:
    """Kafka's decision for ``action`` given every ACL of the cluster (module doc)."""
    if action.principal in super_users:
        return True
    applicable = [b for b in acls
                  if pattern_matches(b, action.resource_type, action.resource_name)]
    op = action.operation
    granting = {op, AclOperation.ALL} | IMPLIED_BY.get(op, frozenset())
    allowed = False
    for b in applicable:
        if not _who_matches(b, action):
            continue
        if b.permission == AclPermissionType.DENY and b.operation in (op, AclOperation.ALL):
            return False
        if b.permission == AclPermissionType.ALLOW and b.operation in granting:
            allowed = True
    if allowed:
        return True
    return not applicable and allow_if_no_acl


def authorize_by_type(acls: Iterable[AclBinding], principal: str, host: str,
                      op: AclOperation, *, allow_if_no_acl: bool = False) -> bool:
    """Kafka's ``authorizeByResourceType`` (super users aside): ``op`` is allowed on some
    resource of the ACLs' type when an ALLOW for the principal and host grants it and no
    DENY on every resource (LITERAL ``*``) takes it away; with no ACL of the type at all,
    ``allow_if_no_acl`` decides."""
    acls = list(acls)
    granting = {op, AclOperation.ALL} | IMPLIED_BY.get(op, frozenset())
    who = [b for b in acls if b.principal in (principal, WILDCARD_PRINCIPAL)
           and b.host in (host, WILDCARD)]
    if any(b.permission == AclPermissionType.DENY and b.operation in (op, AclOperation.ALL)
           and b.pattern_type == PatternType.LITERAL and b.resource_name == WILDCARD
           for b in who):
        return False
    if any(b.permission == AclPermissionType.ALLOW and b.operation in granting for b in who):
        return True
    return not acls and allow_if_no_acl


def parse_super_users(value: str) -> frozenset[str]:
    """``super.users``: principals separated by semicolons (``User:admin;User:broker``)."""
    return frozenset(p.strip() for p in value.split(";") if p.strip())
