"""Kafka's ACL matching (``common.security.acl``): patterns, implied operations, deny
wins, hosts, wildcard principals, super users, allow.everyone.if.no.acl.found, filters
and validation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermissionType,
    Action,
    PatternType,
    ResourceType,
    authorize,
    filter_matches,
    parse_super_users,
    validate_binding,
)

T, G, C = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
Op = AclOperation


def acl(name: str, op: AclOperation, perm: AclPermissionType = ALLOW, *,
        rt: ResourceType = T, pattern: PatternType = LIT, principal: str = "User:alice",
        host: str = "*") -> AclBinding:
    return AclBinding(rt, name, pattern, principal, host, op, perm)


def ask(op: AclOperation, name: str = "orders", *, rt: ResourceType = T,
        principal: str = "User:alice", host: str = "10.0.0.1") -> Action:
    return Action(principal, host, op, rt, name)


def test_literal_prefixed_and_wildcard_patterns() -> None:
    assert authorize([acl("orders", Op.READ)], ask(Op.READ))
    assert not authorize([acl("orders", Op.READ)], ask(Op.READ, "orders2"))
    assert authorize([acl("ord", Op.READ, pattern=PRE)], ask(Op.READ, "orders2"))
    assert not authorize([acl("ord", Op.READ)], ask(Op.READ, "orders"))  # literal, not prefix
    assert authorize([acl("*", Op.READ)], ask(Op.READ, "anything"))
    assert not authorize([acl("orders", Op.READ, rt=G)], ask(Op.READ))  # other type


def test_implied_operations_as_kafka() -> None:
    for granting in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.ALL, Op.DESCRIBE):
        assert authorize([acl("orders", granting)], ask(Op.DESCRIBE)), granting
    for other in (Op.CREATE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS, Op.IDEMPOTENT_WRITE):
        assert not authorize([acl("orders", other)], ask(Op.DESCRIBE)), other
    assert authorize([acl("orders", Op.ALTER_CONFIGS)], ask(Op.DESCRIBE_CONFIGS))
    assert not authorize([acl("orders", Op.DESCRIBE_CONFIGS)], ask(Op.ALTER_CONFIGS))
    assert not authorize([acl("orders", Op.DESCRIBE)], ask(Op.READ))  # no reverse
    assert not authorize([acl("orders", Op.READ)], ask(Op.WRITE))


def test_deny_wins_but_a_deny_does_not_imply() -> None:
    acls = [acl("orders", Op.ALL), acl("ord", Op.WRITE, DENY, pattern=PRE)]
    assert not authorize(acls, ask(Op.WRITE))
    assert authorize(acls, ask(Op.READ))
    # a DENY for READ does not deny DESCRIBE (implication is for ALLOW only)
    acls = [acl("orders", Op.ALL), acl("orders", Op.READ, DENY)]
    assert authorize(acls, ask(Op.DESCRIBE))
    assert not authorize([acl("orders", Op.READ), acl("*", Op.ALL, DENY)], ask(Op.READ))


def test_principals_and_hosts() -> None:
    assert not authorize([acl("orders", Op.READ)], ask(Op.READ, principal="User:bob"))
    assert authorize([acl("orders", Op.READ, principal="User:*")],
                     ask(Op.READ, principal="User:bob"))
    assert authorize([acl("orders", Op.READ, host="10.0.0.1")], ask(Op.READ))
    assert not authorize([acl("orders", Op.READ, host="10.0.0.2")], ask(Op.READ))
    deny_host = [acl("orders", Op.READ), acl("orders", Op.READ, DENY, host="10.0.0.1")]
    assert not authorize(deny_host, ask(Op.READ))
    assert authorize(deny_host, ask(Op.READ, host="10.0.0.9"))


def test_super_users_and_no_acl_default() -> None:
    supers = parse_super_users(" User:admin ; User:broker;")
    assert supers == {"User:admin", "User:broker"}
    deny_all = [acl("*", Op.ALL, DENY, principal="User:*")]
    assert authorize(deny_all, ask(Op.WRITE, principal="User:admin"), super_users=supers)
    assert not authorize([], ask(Op.READ))
    assert authorize([], ask(Op.READ), allow_if_no_acl=True)
    # an ACL for someone else on the resource: "an ACL was found", so denied
    others = [acl("orders", Op.READ, principal="User:bob")]
    assert not authorize(others, ask(Op.READ), allow_if_no_acl=True)
    assert authorize(others, ask(Op.READ, "payments"), allow_if_no_acl=True)


def test_cluster_resource() -> None:
    acls = [acl("kafka-cluster", Op.CLUSTER_ACTION, rt=C, principal="User:broker")]
    assert authorize(acls, ask(Op.CLUSTER_ACTION, "kafka-cluster", rt=C,
                               principal="User:broker"))
    assert not authorize(acls, ask(Op.ALTER, "kafka-cluster", rt=C, principal="User:broker"))


def test_filters() -> None:
    a = acl("orders", Op.READ)
    p = acl("ord", Op.WRITE, pattern=PRE, principal="User:bob")
    w = acl("*", Op.DESCRIBE)
    every = [a, p, w]

    def sel(f: AclFilter) -> list[AclBinding]:
        return [b for b in every if filter_matches(f, b)]

    assert sel(AclFilter()) == every
    assert sel(AclFilter(resource_name="orders")) == [a]
    assert sel(AclFilter(pattern_type=PRE)) == [p]
    assert sel(AclFilter(resource_name="orders", pattern_type=PatternType.MATCH)) == every
    assert sel(AclFilter(resource_name="payments", pattern_type=PatternType.MATCH)) == [w]
    assert sel(AclFilter(principal="User:bob")) == [p]
    assert sel(AclFilter(operation=Op.READ, permission=ALLOW)) == [a]
    assert sel(AclFilter(resource_type=G)) == []
    assert sel(AclFilter(host="10.0.0.1")) == []


def test_validation() -> None:
    assert validate_binding(acl("orders", Op.READ)) is None
    assert validate_binding(acl("kafka-cluster", Op.ALTER, rt=C)) is None
    bad = [acl("orders", Op.ANY), acl("orders", Op.READ, AclPermissionType.ANY),
           acl("orders", Op.READ, rt=ResourceType.ANY), acl("x", Op.READ, rt=C),
           acl("orders", Op.READ, pattern=PatternType.MATCH),
           acl("orders", Op.READ, principal="alice"), acl("", Op.READ),
           acl("orders", Op.READ, host="")]
    for b in bad:
        assert validate_binding(b) is not None, b


names = st.text(alphabet="abc-", min_size=1, max_size=6)


@given(acl_name=names, resource=names, prefixed=st.booleans(),
       op=st.sampled_from([o for o in AclOperation if o > AclOperation.ALL]))
def test_a_matching_deny_always_wins(acl_name: str, resource: str, prefixed: bool,
                                     op: AclOperation) -> None:
    pattern = PRE if prefixed else LIT
    acls = [acl(acl_name, Op.ALL, pattern=pattern), acl(acl_name, op, DENY, pattern=pattern)]
    applies = resource.startswith(acl_name) if prefixed else resource == acl_name
    assert authorize(acls, ask(op, resource)) is False
    assert authorize(acls[:1], ask(op, resource)) is applies
