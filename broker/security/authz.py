"""The authorizer shell and the one helper every handler asks before it acts.

``authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer`` turns it
on (empty: no authorizer, everything allowed, as Kafka without one). ``StandardAuthorizer``
decides with ``common.security.acl.authorize`` against the ACLs of the node's current
metadata image (every broker enforces the same set as soon as it applied the records),
``super.users`` and ``allow.everyone.if.no.acl.found``.

Handlers call these helpers, never the authorizer directly, so one sweep test (and a
reader) can find every check:

- ``authorized(ctx, op, resource_type, name)`` → bool, for one resource;
- ``authorized_cluster(ctx, op)`` → bool, the CLUSTER resource (``kafka-cluster``);
- ``authorized_transactional_id(ctx, transactional_id, op=WRITE)`` → bool
  (TRANSACTIONAL_ID_AUTHORIZATION_FAILED when False), for the transaction APIs;
- ``filter_authorized(ctx, op, resource_type, names)`` → the names allowed;
- ``visible(ctx, op, resource_type, name)`` → bool, for what a listing shows (Metadata of
  every topic, ListGroups, ListTransactions): such filtering is not logged as a denial.

Each denial is logged once per check (``authorization_denied`` with principal, host,
operation, resource and API key), as Kafka's authorizer logger does. Requests this process
sends itself (``ctx.internal``) are never checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from broker.config import STANDARD_AUTHORIZER
from common.logging import get_logger
from common.security.acl import (
    CLUSTER_NAME,
    AclBinding,
    AclOperation,
    Action,
    ResourceType,
    authorize,
    authorize_by_type,
)
from controller.metadata.image import MetadataImage
from protocol.errors import ErrorCode

log = get_logger("strom.authorizer")

__all__ = ["STANDARD_AUTHORIZER", "AclOperation", "ResourceType", "StandardAuthorizer",
           "authorized", "authorized_any_topic", "authorized_cluster",
           "authorized_operations", "authorized_transactional_id",
           "filter_authorized", "make_authorizer", "visible", "TOPIC_DENIED", "GROUP_DENIED",
           "CLUSTER_DENIED", "TXN_DENIED"]

TOPIC_DENIED = ErrorCode.topic_authorization_failed
GROUP_DENIED = ErrorCode.group_authorization_failed
CLUSTER_DENIED = ErrorCode.cluster_authorization_failed
TXN_DENIED = ErrorCode.transactional_id_authorization_failed


class StandardAuthorizer:
    """Kafka's ACL decisions over the ACLs of ``image()`` (see the module doc)."""

    def __init__(self, image: Callable[[], MetadataImage], super_users: frozenset[str],
                 allow_if_no_acl: bool) -> None:
        self._image = image
        self.super_users = super_users
        self.allow_if_no_acl = allow_if_no_acl
        self._indexed: tuple[int, dict[ResourceType, list[AclBinding]]] | None = None

    def _acls(self, resource_type: ResourceType) -> list[AclBinding]:
        acls = self._image().acls
        if self._indexed is None or self._indexed[0] != id(acls):
            index: dict[ResourceType, list[AclBinding]] = {}
            for b in acls.values():
                index.setdefault(b.resource_type, []).append(b)
            self._indexed = (id(acls), index)
        return self._indexed[1].get(resource_type, [])

    def authorize(self, action: Action) -> bool:
        return authorize(self._acls(action.resource_type), action,
                         super_users=self.super_users, allow_if_no_acl=self.allow_if_no_acl)

    def authorize_any(self, principal: str, host: str, op: AclOperation,
                      resource_type: ResourceType) -> bool:
        """Kafka's ``authorizeByResourceType``: whether ``op`` is allowed on *some*
        resource of the type (an idempotent producer with WRITE on any topic)."""
        if principal in self.super_users:
            return True
        return authorize_by_type(self._acls(resource_type), principal, host, op,
                                 allow_if_no_acl=self.allow_if_no_acl)


def make_authorizer(config: Any, image: Callable[[], MetadataImage]
                    ) -> StandardAuthorizer | None:
    """The authorizer ``config`` asks for (None: ``authorizer.class.name`` empty)."""
    if not config.authorizer_class_name:
        return None
    return StandardAuthorizer(image, config.super_user_set,
                              config.allow_everyone_if_no_acl_found)


def _check(ctx: Any, op: AclOperation, resource_type: ResourceType, name: str,
           log_denial: bool = True) -> bool:
    authorizer: StandardAuthorizer | None = getattr(ctx.broker, "authorizer", None)
    if authorizer is None or ctx.internal:
        return True
    action = Action(ctx.principal, ctx.client_host, op, resource_type, name)
    if authorizer.authorize(action):
        return True
    if log_denial:
        log.info("authorization_denied", principal=ctx.principal, host=ctx.client_host,
                 operation=op.name, resource_type=resource_type.name, resource=name,
                 api_key=ctx.api_key, connection=ctx.connection_id)
    return False


def authorized(ctx: Any, op: AclOperation, resource_type: ResourceType, name: str) -> bool:
    """Whether ``ctx``'s principal may do ``op`` on the resource."""
    return _check(ctx, op, resource_type, name)


def authorized_cluster(ctx: Any, op: AclOperation) -> bool:
    """Whether ``ctx``'s principal may do ``op`` on the cluster."""
    return _check(ctx, op, ResourceType.CLUSTER, CLUSTER_NAME)


def authorized_transactional_id(ctx: Any, transactional_id: str,
                                op: AclOperation = AclOperation.WRITE) -> bool:
    """Whether ``ctx``'s principal may use ``transactional_id`` (WRITE for InitProducerId,
    AddPartitionsToTxn, EndTxn, TxnOffsetCommit...; DESCRIBE for FindCoordinator and
    DescribeTransactions). False → TRANSACTIONAL_ID_AUTHORIZATION_FAILED."""
    return _check(ctx, op, ResourceType.TRANSACTIONAL_ID, transactional_id)


def authorized_any_topic(ctx: Any, op: AclOperation) -> bool:
    """Whether ``ctx``'s principal may do ``op`` on at least some topic."""
    authorizer: StandardAuthorizer | None = getattr(ctx.broker, "authorizer", None)
    if authorizer is None or ctx.internal:
        return True
    return authorizer.authorize_any(ctx.principal, ctx.client_host, op, ResourceType.TOPIC)


def authorized_operations(ctx: Any, resource_type: ResourceType, name: str,
                          bitfield: int) -> int:
    """KIP-430 ``authorized_operations``: the bits of ``bitfield`` (1 << operation code)
    whose operation the principal may do on the resource. Not logged as denials: this
    describes permissions, it does not act."""
    out = 0
    for op in AclOperation:
        if bitfield & (1 << op) and _check(ctx, op, resource_type, name, log_denial=False):
            out |= 1 << op
    return out


def visible(ctx: Any, op: AclOperation, resource_type: ResourceType, name: str) -> bool:
    """``authorized`` for filtering what a listing shows (Metadata of all topics,
    ListGroups, ListTransactions): not logged as a denial, as Kafka's ``logIfDenied``
    false, so periodic metadata polls do not flood the log."""
    return _check(ctx, op, resource_type, name, log_denial=False)


def filter_authorized(ctx: Any, op: AclOperation, resource_type: ResourceType,
                      names: Iterable[str], log_denial: bool = True) -> set[str]:
    """The names of ``names`` the principal may do ``op`` on."""
    return {n for n in names if _check(ctx, op, resource_type, n, log_denial)}


def is_enabled(ctx: Any) -> bool:
    """Whether this broker authorizes at all (and the request is not its own)."""
    return getattr(ctx.broker, "authorizer", None) is not None and not ctx.internal
