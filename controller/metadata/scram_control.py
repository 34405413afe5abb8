"""The active controller's SCRAM credential decisions (Kafka's ScramControlManager):
AlterUserScramCredentials becomes UserScramCredentialRecord /
RemoveUserScramCredentialRecord, so every broker authenticates the same users.

The request carries, per upsertion, the salt, the iteration count and the *salted*
password (the client salts it); the controller derives the stored and server keys
(``common.security.scram.credential``) and stores only those.

Rules (per user; the results list each user of the request once, in order of first
mention, deletions before upsertions; a user with any error changes nothing):
- a user named twice for the same mechanism: DUPLICATE_RESOURCE;
- an empty user name, iterations outside 4096..16384, an empty salt or salted password:
  UNACCEPTABLE_CREDENTIAL;
- a mechanism other than SCRAM-SHA-256 (1) / SCRAM-SHA-512 (2): UNSUPPORTED_SASL_MECHANISM;
- deleting a credential that does not exist: RESOURCE_NOT_FOUND.
DescribeUserScramCredentials (``describe``): every user with a credential (users None /
empty) or the named ones; a named user without credentials is RESOURCE_NOT_FOUND, one
named twice DUPLICATE_RESOURCE.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from common.security.scram import (
    MECHANISM_NAMES,
    BootstrapUser,
    ScramCredential,
    credential,
    iterations_problem,
    salted_password,
)
from controller.metadata.image import MetadataImage
from controller.metadata.records import (
    MetadataRecord,
    RemoveUserScramCredentialRecord,
    UserScramCredentialRecord,
)
from protocol.errors import ErrorCode

NONE = 0
DUPLICATE_RESOURCE = int(ErrorCode.duplicate_resource.value)
UNACCEPTABLE_CREDENTIAL = int(ErrorCode.unacceptable_credential.value)
UNSUPPORTED_SASL_MECHANISM = int(ErrorCode.unsupported_sasl_mechanism.value)
RESOURCE_NOT_FOUND = int(ErrorCode.resource_not_found.value)


@dataclass(frozen=True, slots=True)
class Upsertion:
    name: str
    mechanism: int
    iterations: int
    salt: bytes
    salted_password: bytes


@dataclass(frozen=True, slots=True)
class UserResult:
    user: str
    error_code: int
    message: str | None = None


def _problem(image: MetadataImage, name: str, mechanism: int, up: Upsertion | None
             ) -> tuple[int, str] | None:
    if not name:
        return UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism not in MECHANISM_NAMES:
        return UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"
    if up is None:
        if (name, mechanism) not in image.scram:
            return RESOURCE_NOT_FOUND, \
                "Attempt to delete a user credential that does not exist"
        return None
    problem = iterations_problem(mechanism, up.iterations)
    if problem:
        return UNACCEPTABLE_CREDENTIAL, problem
    if not up.salt or not up.salted_password:
        return UNACCEPTABLE_CREDENTIAL, "Salt and salted password must not be empty"
    return None


def alter(image: MetadataImage, deletions: Sequence[tuple[str, int]],
          upsertions: Sequence[Upsertion]) -> tuple[list[MetadataRecord], list[UserResult]]:
    """Records and one result per user (module doc)."""
    items: list[tuple[str, int, Upsertion | None]] = \
        [(n, m, None) for n, m in deletions] + [(u.name, u.mechanism, u) for u in upsertions]
    order: list[str] = []
    errors: dict[str, tuple[int, str]] = {}
    seen: set[tuple[str, int]] = set()
    for name, mech, up in items:
        if name not in order:
            order.append(name)
        if (name, mech) in seen:
            errors.setdefault(name, (DUPLICATE_RESOURCE, "A user credential cannot be "
                                                         "altered twice in the same request"))
        seen.add((name, mech))
        problem = _problem(image, name, mech, up)
        if problem is not None:
            errors.setdefault(name, problem)
    records: list[MetadataRecord] = []
    for name, mech, up in items:
        if name in errors:
            continue
        if up is None:
            records.append(RemoveUserScramCredentialRecord(name, mech))
        else:
            c = credential(mech, up.salt, up.salted_password, up.iterations)
            records.append(UserScramCredentialRecord(name, mech, c.salt, c.stored_key,
                                                     c.server_key, c.iterations))
    results = [UserResult(n, *errors[n]) if n in errors else UserResult(n, NONE)
               for n in order]
    return records, results


@dataclass(frozen=True, slots=True)
class DescribedUser:
    user: str
    error_code: int
    message: str | None
    #: (mechanism id, iterations) per credential
    credentials: tuple[tuple[int, int], ...] = ()


def describe(image: MetadataImage, users: Sequence[str] | None) -> list[DescribedUser]:
    by_user: dict[str, list[tuple[int, int]]] = {}
    for (name, mech), c in sorted(image.scram.items()):
        by_user.setdefault(name, []).append((mech, c.iterations))
    if not users:
        return [DescribedUser(n, NONE, None, tuple(cs)) for n, cs in sorted(by_user.items())]
    out = []
    counts = {u: list(users).count(u) for u in users}
    done: set[str] = set()
    for u in users:
        if u in done:
            continue
        done.add(u)
        if counts[u] > 1:
            out.append(DescribedUser(u, DUPLICATE_RESOURCE, "Cannot describe SCRAM "
                                     "credentials for the same user twice in a single "
                                     "request"))
        elif u not in by_user:
            out.append(DescribedUser(u, RESOURCE_NOT_FOUND,
                                     "Attempt to describe a user credential that does "
                                     "not exist"))
        else:
            out.append(DescribedUser(u, NONE, None, tuple(by_user[u])))
    return out


def bootstrap_credential(user: BootstrapUser) -> ScramCredential:
    """The credential of one bootstrap user; a user without a salt gets a random one
    (``secrets``: the only non-deterministic step, made here so callers stay simple)."""
    salt = user.salt if user.salt is not None else secrets.token_bytes(32)
    return credential(user.mechanism, salt, salted_password(user.mechanism, user.password,
                                                            salt, user.iterations),
                      user.iterations)


def bootstrap_records(image: MetadataImage, users: Sequence[BootstrapUser]
                      ) -> tuple[list[MetadataRecord], list[str]]:
    """Credentials for the bootstrap users (``strom.add.scram``) that the image lacks:
    (records, ``user/mechanism`` names added), salted as ``bootstrap_credential``."""
    records: list[MetadataRecord] = []
    added = []
    for u in users:
        if (u.name, u.mechanism) in image.scram:
            continue
        c = bootstrap_credential(u)
        records.append(UserScramCredentialRecord(u.name, u.mechanism, c.salt, c.stored_key,
                                                 c.server_key, c.iterations))
        added.append(f"{u.name}/{MECHANISM_NAMES[u.mechanism]}")
    return records, added
