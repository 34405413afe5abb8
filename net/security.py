"""Typed ACL and SCRAM user administration over ``KafkaClient`` (blocking; for tools).

``Security(client)``:

- ``create_acls(bindings)`` (CreateAcls), ``describe_acls(filter)`` (DescribeAcls) and
  ``delete_acls(filters)`` (DeleteAcls, returns the ACLs it removed), with the model of
  ``common.security.acl`` (``AclBinding``, ``AclFilter``: ANY / None match everything);
- ``describe_users(names)`` (DescribeUserScramCredentials: mechanisms and iterations,
  never secrets; None: every user), ``upsert_user(name, mechanism, password, ...)`` and
  ``delete_user(name, mechanism)`` (AlterUserScramCredentials). As Kafka's AdminClient
  does, the password never leaves this process: the salted password
  ``Hi(password, salt, iterations)`` is computed here (``common.security.scram``) with a
  random 32-byte salt unless one is given, and only it and the salt are sent.

Requests go to any broker (brokers forward the changes to the controller). A Kafka error
raises ``KafkaApiError`` with the broker's message; a per-user DescribeUserScram error
RESOURCE_NOT_FOUND (no such user) is reported as a user with no credentials only when the
user was not named — a named unknown user raises.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from common.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)
from common.security.scram import DEFAULT_ITERATIONS, MECHANISM_NAMES, MECHANISMS, salted_password
from net.kafka_client import KafkaClient, error_name
from net.session import KafkaApiError

DESCRIBE_ACLS = 29
CREATE_ACLS = 30
DELETE_ACLS = 31
DESCRIBE_USER_SCRAM = 50
ALTER_USER_SCRAM = 51
SALT_BYTES = 32


@dataclass(frozen=True, slots=True)
class ScramUser:
    name: str
    #: (mechanism name, iterations)
    credentials: tuple[tuple[str, int], ...]


def _check(code: object, message: str | None, what: str) -> None:
    if int(code) != 0:  # type: ignore[call-overload]
        name = error_name(code)
        detail = f": {message}" if message else ""
        raise KafkaApiError(int(code), name, f"{what}: {name}{detail}")  # type: ignore[call-overload]


def _filter_values(f: AclFilter) -> dict[str, object]:
    return {"resource_type_filter": int(f.resource_type),
            "resource_name_filter": f.resource_name,
            "pattern_type_filter": int(f.pattern_type), "principal_filter": f.principal,
            "host_filter": f.host, "operation": int(f.operation),
            "permission_type": int(f.permission)}


def _binding(resource_type: int, name: str, pattern: int, acl: object) -> AclBinding:
    return AclBinding(ResourceType(resource_type), name, PatternType(pattern),
                      acl.principal, acl.host,  # type: ignore[attr-defined]
                      AclOperation(acl.operation),  # type: ignore[attr-defined]
                      AclPermissionType(acl.permission_type))  # type: ignore[attr-defined]


class Security:
    """See the module doc."""

    def __init__(self, client: KafkaClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ ACLs
    def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        response = self.client.call_any(CREATE_ACLS, {"creations": [{
            "resource_type": int(b.resource_type), "resource_name": b.resource_name,
            "resource_pattern_type": int(b.pattern_type), "principal": b.principal,
            "host": b.host, "operation": int(b.operation),
            "permission_type": int(b.permission)} for b in bindings]}, highest=3, lowest=1)
        for b, r in zip(bindings, response.results, strict=False):
            _check(r.error_code, r.error_message,
                   f"cannot create ACL {b.permission.name} {b.principal} "
                   f"{b.operation.name} on {b.resource_type.name} {b.resource_name!r}")

    def describe_acls(self, f: AclFilter) -> list[AclBinding]:
        response = self.client.call_any(DESCRIBE_ACLS, _filter_values(f), highest=3,
                                        lowest=1)
        _check(response.error_code, response.error_message, "cannot describe ACLs")
        out = [_binding(r.resource_type, r.resource_name, r.pattern_type, a)
               for r in response.resources for a in r.acls]
        return sorted(out, key=_order)

    def delete_acls(self, filters: Sequence[AclFilter]) -> list[AclBinding]:
        response = self.client.call_any(DELETE_ACLS, {
            "filters": [_filter_values(f) for f in filters]}, highest=3, lowest=1)
        out = []
        for result in response.filter_results:
            _check(result.error_code, result.error_message, "cannot delete ACLs")
            for m in result.matching_acls:
                _check(m.error_code, m.error_message, "cannot delete an ACL")
                out.append(_binding(m.resource_type, m.resource_name, m.pattern_type, m))
        return sorted(out, key=_order)

    # ------------------------------------------------------------------ SCRAM users
    def describe_users(self, names: Sequence[str] | None = None) -> list[ScramUser]:
        response = self.client.call_any(DESCRIBE_USER_SCRAM, {
            "users": None if names is None else [{"name": n} for n in names]}, highest=0)
        _check(response.error_code, response.error_message, "cannot describe users")
        out = []
        for r in response.results:
            _check(r.error_code, r.error_message, f"cannot describe user {r.user!r}")
            out.append(ScramUser(r.user, tuple(sorted(
                (MECHANISM_NAMES.get(int(c.mechanism), str(c.mechanism)), int(c.iterations))
                for c in r.credential_infos))))
        return sorted(out, key=lambda u: u.name)

    def upsert_user(self, name: str, mechanism: str, password: str, *,
                    iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> None:
        mech = MECHANISMS[mechanism]
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        self._alter(name, upsertions=[{
            "name": name, "mechanism": mech, "iterations": iterations, "salt": salt,
            "salted_password": salted_password(mech, password, salt, iterations)}])

    def delete_user(self, name: str, mechanism: str) -> None:
        self._alter(name, deletions=[{"name": name, "mechanism": MECHANISMS[mechanism]}])

    def _alter(self, name: str, *, upsertions: list[dict[str, object]] | None = None,
               deletions: list[dict[str, object]] | None = None) -> None:
        response = self.client.call_any(ALTER_USER_SCRAM, {
            "deletions": deletions or [], "upsertions": upsertions or []}, highest=0)
        for r in response.results:
            _check(r.error_code, r.error_message, f"cannot change user {r.user!r}")


def _order(b: AclBinding) -> tuple[object, ...]:
    return (b.resource_type, b.resource_name, b.pattern_type, b.principal, b.host,
            b.operation, b.permission)
