"""SCRAM credentials and ACLs in the metadata log: record codec round trips, image apply
rules and snapshots, and the active controller's decisions (``scram_control``,
``acl_control``), plus the SCRAM credential math against scramp's and the bootstrap
syntax."""

from __future__ import annotations

import itertools
import uuid

import pytest
import scramp

from common.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)
from common.security.scram import credential, parse_add_scram, salted_password
from controller.metadata import MetadataError, MetadataImage, apply_all, decode_image, encode_image
from controller.metadata.acl_control import create_acls, delete_acls, describe_acls
from controller.metadata.codec import decode_batch, encode_batch
from controller.metadata.records import (
    AccessControlEntryRecord,
    RemoveAccessControlEntryRecord,
    RemoveUserScramCredentialRecord,
    UserScramCredentialRecord,
)
from controller.metadata.scram_control import Upsertion, alter, bootstrap_records, describe
from protocol.errors import ErrorCode

SALT = b"0123456789abcdef"


def ids() -> itertools.count:
    return (uuid.UUID(int=i) for i in itertools.count(1))  # type: ignore[return-value]


def up(name: str, mech: int = 1, iterations: int = 4096, password: str = "pw") -> Upsertion:
    return Upsertion(name, mech, iterations, SALT, salted_password(mech, password, SALT,
                                                                   iterations))


def test_credentials_match_scramp() -> None:
    for mech, name in ((1, "SCRAM-SHA-256"), (2, "SCRAM-SHA-512")):
        c = credential(mech, SALT, salted_password(mech, "secret", SALT, 4096), 4096)
        salt, stored, server, iterations = scramp.ScramMechanism(name).make_auth_info(
            "secret", 4096, SALT)
        assert (c.salt, c.stored_key, c.server_key, c.iterations) == (salt, stored, server,
                                                                      iterations)


def test_records_round_trip_and_apply() -> None:
    records = [
        UserScramCredentialRecord("alice", 1, SALT, b"s" * 32, b"k" * 32, 4096),
        AccessControlEntryRecord(uuid.UUID(int=7), 2, "orders", 3, "User:alice", "*", 3, 3),
    ]
    assert decode_batch(encode_batch(records)) == records
    image = apply_all(MetadataImage(), records)
    assert image.scram[("alice", 1)].iterations == 4096
    assert image.acls[uuid.UUID(int=7)] == AclBinding(
        ResourceType.TOPIC, "orders", PatternType.LITERAL, "User:alice", "*",
        AclOperation.READ, AclPermissionType.ALLOW)
    assert decode_image(encode_image(image)).scram == image.scram
    assert decode_image(encode_image(image)).acls == image.acls
    with pytest.raises(MetadataError):
        apply_all(image, [records[1]])  # same ACL id twice
    with pytest.raises(MetadataError):
        apply_all(image, [RemoveAccessControlEntryRecord(uuid.UUID(int=8))])
    with pytest.raises(MetadataError):
        apply_all(image, [RemoveUserScramCredentialRecord("alice", 2)])
    gone = apply_all(image, [RemoveUserScramCredentialRecord("alice", 1),
                             RemoveAccessControlEntryRecord(uuid.UUID(int=7))])
    assert not gone.scram and not gone.acls


def test_alter_scram_rules() -> None:
    image = MetadataImage()
    records, results = alter(image, [], [up("alice"), up("alice", 2, 8192)])
    assert [(r.user, r.error_code) for r in results] == [("alice", 0)]
    image = apply_all(image, records)
    assert sorted(image.scram) == [("alice", 1), ("alice", 2)]
    assert "pw" not in repr(image.scram)  # the password is nowhere
    records, results = alter(image, [("alice", 1), ("bob", 1)],
                             [up("carol", iterations=100), Upsertion("dave", 3, 4096, SALT, b"x"),
                              up(""),
                              up("erin"), up("erin")])
    codes = {r.user: r.error_code for r in results}
    assert [r.user for r in results] == ["alice", "bob", "carol", "dave", "", "erin"]
    assert codes == {"alice": 0, "bob": ErrorCode.resource_not_found,
                     "carol": ErrorCode.unacceptable_credential,
                     "dave": ErrorCode.unsupported_sasl_mechanism,
                     "": ErrorCode.unacceptable_credential,
                     "erin": ErrorCode.duplicate_resource}
    assert records == [RemoveUserScramCredentialRecord("alice", 1)]
    described = describe(apply_all(image, records), None)
    assert [(d.user, d.credentials) for d in described] == [("alice", ((2, 8192),))]
    named = describe(image, ["nobody", "alice", "alice"])
    assert [(d.user, d.error_code) for d in named] == [
        ("nobody", ErrorCode.resource_not_found), ("alice", ErrorCode.duplicate_resource)]


def test_bootstrap_users() -> None:
    users = parse_add_scram("SCRAM-SHA-256=[name=alice,password=a-s];"
                            "SCRAM-SHA-512=[name=bob,password=b,iterations=8192,salt=YWJj]")
    assert [(u.name, u.mechanism, u.iterations) for u in users] == [
        ("alice", 1, 4096), ("bob", 2, 8192)]
    assert users[1].salt == b"abc"
    records, added = bootstrap_records(MetadataImage(), users)
    assert added == ["alice/SCRAM-SHA-256", "bob/SCRAM-SHA-512"]
    image = apply_all(MetadataImage(), records)
    assert bootstrap_records(image, users) == ([], [])  # only what the log lacks
    for bad in ("SCRAM-SHA-1=[name=a,password=b]", "SCRAM-SHA-256=[name=a]",
                "SCRAM-SHA-256=name=a,password=b", "SCRAM-SHA-256=[name=a,password=b,"
                                                   "iterations=10]"):
        with pytest.raises(ValueError):
            parse_add_scram(bad)


def lit(name: str, op: AclOperation = AclOperation.READ,
        perm: AclPermissionType = AclPermissionType.ALLOW,
        pattern: PatternType = PatternType.LITERAL) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, name, pattern, "User:alice", "*", op, perm)


def test_create_describe_delete_acls() -> None:
    image = MetadataImage()
    bad = AclBinding(ResourceType.ANY, "x", PatternType.LITERAL, "User:a", "*",
                     AclOperation.READ, AclPermissionType.ALLOW)
    records, results = create_acls(image, [lit("a"), bad, lit("a"), lit("p", pattern=
                                                                       PatternType.PREFIXED)],
                                   ids())
    assert [r.error_code for r in results] == [0, ErrorCode.invalid_request, 0, 0]
    assert len(records) == 2  # the duplicate adds nothing
    image = apply_all(image, records)
    assert create_acls(image, [lit("a")], ids())[0] == []  # already there
    code, _, found = describe_acls(image, AclFilter(resource_name="pq",
                                                    pattern_type=PatternType.MATCH))
    assert code == 0 and found == [lit("p", pattern=PatternType.PREFIXED)]
    records, results = delete_acls(image, [AclFilter(resource_name="a"), AclFilter(),
                                           AclFilter(operation=AclOperation.UNKNOWN)])
    assert [len(r.matches) for r in results] == [1, 2, 0]
    assert results[2].error_code == ErrorCode.invalid_request
    assert len(records) == 2  # each ACL removed once
    assert not apply_all(image, records).acls
