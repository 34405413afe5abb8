"""``strom acl create|list|delete`` (as ``kafka-acls.sh``) and ``strom user
create|describe|delete`` (SCRAM credentials, as ``kafka-configs.sh --entity-type users``),
over ``net.security``. Names of resource types, pattern types, operations and
permissions are Kafka's, in any case (``topic``, ``PREFIXED``, ``idempotent-write``)."""

from __future__ import annotations

import argparse
import getpass
import sys
from enum import IntEnum
from typing import Any, TypeVar

from broker.tools.context import Failure, UsageError, emit, make_client
from broker.tools.render import table
from broker.tools.topic_cmd import family, leaf
from common.security.acl import (
    CLUSTER_NAME,
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    parse_principal,
)
from common.security.scram import (
    DEFAULT_ITERATIONS,
    MAX_ITERATIONS,
    MECHANISMS,
    MIN_ITERATIONS,
)
from net.security import Security

E = TypeVar("E", bound=IntEnum)
MECHANISM_CHOICES = tuple(MECHANISMS)


def enum_value(kind: type[E], text: str, what: str, *, allowed: tuple[E, ...] = ()) -> E:
    """``kind[TEXT]`` (dashes as underscores); UsageError listing the choices."""
    choices = allowed or tuple(m for m in kind if m.name != "UNKNOWN")
    try:
        value = kind[text.strip().upper().replace("-", "_")]
    except KeyError:
        value = None
    if value is None or value not in choices:
        names = ", ".join(m.name.lower() for m in choices)
        raise UsageError(f"bad {what} {text!r}: expected one of {names}")
    return value


def _acl_options(p: Any, *, filters: bool) -> None:
    p.add_argument("--principal", required=not filters, metavar="TYPE:NAME",
                   help="e.g. User:alice, User:* for everyone")
    p.add_argument("--host", default=None if filters else "*",
                   help="client address (default: * — any)")
    p.add_argument("--resource-type", "--type", default=None if filters else "topic",
                   help="topic (default), group, cluster, transactional-id, user, ...")
    p.add_argument("--resource-name", "--name", default=None,
                   help="resource name (* for all; cluster: kafka-cluster)")
    p.add_argument("--pattern-type", default="any" if filters else "literal",
                   help="literal (default) or prefixed" + ("; any, match" if filters else ""))
    p.add_argument("--operation", action="append", default=[],
                   help="read, write, create, delete, alter, describe, all, ... "
                        "(repeatable)" + ("" if filters else "; required"))
    p.add_argument("--permission", default="any" if filters else "allow",
                   help="allow (default) or deny" + ("; any" if filters else ""))


def add_parser(sub: Any, common: Any) -> None:
    acl = family(sub, "acl", "create, list and delete ACLs (needs an authorizer)",
                 "strom acl create --principal User:alice --operation write --name orders",
                 "strom acl list --principal User:alice",
                 "strom acl delete --principal User:alice --name orders")
    asub = acl.add_subparsers(dest="acl_command", required=True, metavar="COMMAND")
    p = leaf(asub, "create", "allow or deny a principal operations on resources",
             "strom acl create --principal User:alice --operation read --operation describe "
             "--type group --name billing --pattern-type prefixed", [common])
    _acl_options(p, filters=False)
    p.set_defaults(run=acl_create)
    p = leaf(asub, "list", "the ACLs matching the filters (none: every ACL)",
             "strom acl list --type topic --name orders --pattern-type match", [common])
    _acl_options(p, filters=True)
    p.set_defaults(run=acl_list)
    p = leaf(asub, "delete", "delete the ACLs matching the filters (at least one filter)",
             "strom acl delete --principal User:alice --type topic --name orders", [common])
    _acl_options(p, filters=True)
    p.set_defaults(run=acl_delete)

    user = family(sub, "user", "SCRAM users: create (or change a password), describe, delete",
                  "strom user create alice --password alice-secret",
                  "strom user describe alice", "strom user delete alice")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")
    p = leaf(usub, "create", "create a SCRAM user or change its password "
             "(salted on this side, as Kafka's AdminClient does)",
             "strom user create alice --password alice-secret --mechanism SCRAM-SHA-512",
             [common])
    p.add_argument("name")
    p.add_argument("--password", help="default: asked on a terminal, else the first line "
                                      "of stdin (keeps it out of the shell history)")
    p.add_argument("--mechanism", default="SCRAM-SHA-256", type=str.upper,
                   choices=MECHANISM_CHOICES, help="default SCRAM-SHA-256")
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                   help=f"{MIN_ITERATIONS}..{MAX_ITERATIONS} (default {DEFAULT_ITERATIONS})")
    p.set_defaults(run=user_create)
    p = leaf(usub, "describe", "users' SCRAM mechanisms and iterations (no secrets)",
             "strom user describe alice bob", [common])
    p.add_argument("names", nargs="*", metavar="name", help="default: every user")
    p.set_defaults(run=user_describe)
    p = leaf(usub, "delete", "delete a user's SCRAM credentials",
             "strom user delete alice --mechanism SCRAM-SHA-512", [common])
    p.add_argument("name")
    p.add_argument("--mechanism", type=str.upper, choices=MECHANISM_CHOICES,
                   help="default: every mechanism the user has")
    p.set_defaults(run=user_delete)


# ---------------------------------------------------------------------- ACLs
def _principal(text: str) -> str:
    if parse_principal(text) is None:
        raise UsageError(f"bad principal {text!r}: expected TYPE:NAME, e.g. User:alice")
    return text


def _resource_name(args: argparse.Namespace, rtype: ResourceType) -> str | None:
    if rtype == ResourceType.CLUSTER and args.resource_name is None:
        return CLUSTER_NAME
    return args.resource_name


def _bindings(args: argparse.Namespace) -> list[AclBinding]:
    rtype = enum_value(ResourceType, args.resource_type, "resource type", allowed=tuple(
        t for t in ResourceType if t not in (ResourceType.UNKNOWN, ResourceType.ANY)))
    name = _resource_name(args, rtype)
    if not name:
        raise UsageError("give --resource-name (or * for every resource of the type)")
    pattern = enum_value(PatternType, args.pattern_type, "pattern type",
                         allowed=(PatternType.LITERAL, PatternType.PREFIXED))
    permission = enum_value(AclPermissionType, args.permission, "permission",
                            allowed=(AclPermissionType.ALLOW, AclPermissionType.DENY))
    if not args.operation:
        raise UsageError("give at least one --operation")
    ops = [enum_value(AclOperation, o, "operation", allowed=tuple(
        op for op in AclOperation if op not in (AclOperation.UNKNOWN, AclOperation.ANY)))
        for o in args.operation]
    return [AclBinding(rtype, name, pattern, _principal(args.principal), args.host, op,
                       permission) for op in dict.fromkeys(ops)]


def _filters(args: argparse.Namespace) -> list[AclFilter]:
    rtype = (ResourceType.ANY if args.resource_type is None else
             enum_value(ResourceType, args.resource_type, "resource type"))
    pattern = enum_value(PatternType, args.pattern_type, "pattern type")
    permission = enum_value(AclPermissionType, args.permission, "permission")
    principal = None if args.principal is None else _principal(args.principal)
    ops = [enum_value(AclOperation, o, "operation") for o in args.operation] or \
        [AclOperation.ANY]
    return [AclFilter(rtype, _resource_name(args, rtype), pattern, principal, args.host, op,
                      permission) for op in dict.fromkeys(ops)]


def _acl_dict(b: AclBinding) -> dict[str, str]:
    return {"principal": b.principal, "host": b.host, "resource_type": b.resource_type.name,
            "resource_name": b.resource_name, "pattern_type": b.pattern_type.name,
            "operation": b.operation.name, "permission": b.permission.name}


def _acl_table(bindings: list[AclBinding]) -> str:
    return table(("PRINCIPAL", "HOST", "RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN",
                  "OPERATION", "PERMISSION"), [
        (b.principal, b.host, b.resource_type.name, b.resource_name, b.pattern_type.name,
         b.operation.name, b.permission.name) for b in bindings])


def acl_create(args: argparse.Namespace) -> int:
    bindings = _bindings(args)
    with make_client(args) as client:
        Security(client).create_acls(bindings)
    emit(args, {"created": [_acl_dict(b) for b in bindings]},
         lambda: _acl_table(bindings) + f"\n{len(bindings)} ACL(s) created")
    return 0


def acl_list(args: argparse.Namespace) -> int:
    filters = _filters(args)
    with make_client(args) as client:
        api = Security(client)
        found = sorted({b for f in filters for b in api.describe_acls(f)},
                       key=lambda b: (b.resource_type, b.resource_name, b.principal,
                                      b.operation))
    emit(args, [_acl_dict(b) for b in found], lambda: _acl_table(found))
    return 0


def acl_delete(args: argparse.Namespace) -> int:
    if all(v is None for v in (args.principal, args.resource_type, args.resource_name,
                               args.host)) and not args.operation:
        raise UsageError("give at least one filter (--principal, --resource-type, "
                         "--resource-name, --host, --operation): this would delete every ACL")
    filters = _filters(args)
    with make_client(args) as client:
        deleted = Security(client).delete_acls(filters)
    emit(args, {"deleted": [_acl_dict(b) for b in deleted]},
         lambda: _acl_table(deleted) + f"\n{len(deleted)} ACL(s) deleted")
    return 0


# ---------------------------------------------------------------------- users
def user_create(args: argparse.Namespace) -> int:
    if not MIN_ITERATIONS <= args.iterations <= MAX_ITERATIONS:
        raise UsageError(f"bad --iterations {args.iterations}: must be "
                         f"{MIN_ITERATIONS}..{MAX_ITERATIONS}")
    if not args.name.strip():
        raise UsageError("a user name must not be empty")
    password = args.password if args.password is not None else _read_password(args.name)
    if not password:
        raise UsageError("the password must not be empty")
    with make_client(args) as client:
        Security(client).upsert_user(args.name, args.mechanism, password,
                                     iterations=args.iterations)
    emit(args, {"user": args.name, "mechanism": args.mechanism,
                "iterations": args.iterations},
         lambda: f"user {args.name} has a {args.mechanism} credential "
                 f"({args.iterations} iterations)")
    return 0


def _read_password(user: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {user}: ")
    return sys.stdin.readline().rstrip("\r\n")


def user_describe(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        users = Security(client).describe_users(args.names or None)
    data = [{"user": u.name, "credentials": [{"mechanism": m, "iterations": i}
                                              for m, i in u.credentials]} for u in users]
    emit(args, data, lambda: table(("USER", "MECHANISM", "ITERATIONS"), [
        (u.name, m, i) for u in users for m, i in u.credentials]))
    return 0


def user_delete(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        api = Security(client)
        if args.mechanism:
            mechanisms = [args.mechanism]
        else:
            (user,) = api.describe_users([args.name])
            mechanisms = [m for m, _ in user.credentials]
            if not mechanisms:
                raise Failure(f"user {args.name!r} has no SCRAM credentials")
        for mechanism in mechanisms:
            api.delete_user(args.name, mechanism)
    emit(args, {"user": args.name, "deleted": mechanisms},
         lambda: f"user {args.name}: {', '.join(mechanisms)} deleted")
    return 0
