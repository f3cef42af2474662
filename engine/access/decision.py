"""The access decision: a principal and an operation on a bucket (or object) in, a grant out.

Every front end and service asks here, so S3, NFS, the admin CLI and the
background runners are judged by one rule:

1. Policy hooks (``AccessPolicy``; bucket and identity policies plug in here
   without any caller changing) may deny outright or allow outright.
2. Otherwise the bucket's owner and the gateway's own services may do
   anything; anyone else gets what the bucket's ACL grants for the
   operation's ``Permission`` (``engine.access.acl``). An operation decided by
   an object's own ACL (GetObject, Get/PutObjectAcl) passes the bucket and is
   decided on each entry it touches (``Grant.check_entry``).

Cost: the owner is decided from the cached bucket record, so the owner's
requests pay no extra I/O; anyone else's request reads the bucket's ACL
afresh (never cached), so making a bucket private takes effect on every
gateway at once. The grant pins the bucket record it was decided on, and the
engine services act on exactly that bucket (see ``engine.buckets.BucketRef``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from engine.access import acl
from engine.access.principal import Principal
from engine.buckets import BucketService
from engine.errors import AccessDenied, NoSuchKey
from engine.operations import Operation, Permission
from engine.records import BucketRecord, ObjectEntry

BUCKET_ACL_ITEM = "acl"  # the bucket configuration document holding its ACL
OBJECT_ACL_HEADER = "x-atonix-acl"  # an object's ACL, kept in ObjectEntry.headers
CORS_ITEM = "cors"  # the bucket configuration document holding its CORS rules


def object_acl(entry: ObjectEntry) -> str:
    return entry.headers.get(OBJECT_ACL_HEADER, acl.PRIVATE)


def with_object_acl(headers: Mapping[str, str], canned: str | None) -> dict[str, str]:
    """An object's stored headers carrying ACL ``canned`` (private, the default, is not kept)."""
    out = {k: v for k, v in headers.items() if k != OBJECT_ACL_HEADER}
    if canned is not None and canned != acl.PRIVATE:
        out[OBJECT_ACL_HEADER] = canned
    return out


class Verdict(Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What a policy hook judges: who, what, on which bucket (and key, when there is one)."""

    principal: Principal
    operation: Operation
    bucket: BucketRecord
    key: str | None = None


class AccessPolicy(Protocol):
    """A source of explicit decisions (bucket policies, identity policies: a later issue).

    Answers ``Verdict.DENY`` (wins over everything), ``Verdict.ALLOW`` (grants
    what no ACL does) or None (no opinion: the ACL decides).
    """

    async def judge(self, request: AccessRequest) -> Verdict | None: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """An allowed operation on one bucket: the record it was decided on, pinned."""

    principal: Principal
    operation: Operation
    record: BucketRecord
    bucket_acl: str | None  # None when the ACL was not needed (owner, service, policy allow)
    by_policy: bool = False  # allowed outright by a policy hook

    @property
    def unrestricted(self) -> bool:
        """The owner, a service or a policy allow: no ACL limits this grant."""
        uid = self.principal.uid
        return self.by_policy or self.principal.is_service or (
            uid is not None and uid == self.record.owner
        )

    def permits(self, *permissions: Permission) -> None:
        """AccessDenied unless the decided operation needs one of ``permissions``.

        A grant decided for listing cannot be used to write, whatever the
        caller asks the engine next.
        """
        if not self.unrestricted and self.operation.needs not in permissions:
            raise AccessDenied(f"{self.operation} does not permit this call")

    def check_entry(self, entry: ObjectEntry) -> None:
        """The object's own ACL decides operations on one object (the entry served)."""
        if self.unrestricted or not self.operation.needs.on_object:
            return
        allowed = acl.is_allowed(
            self.operation,
            self.principal.uid,
            self.record.owner,
            self.bucket_acl,
            object_acl(entry),
        )
        if not allowed:
            raise AccessDenied()

    def missing(self, exc: NoSuchKey) -> Exception:
        """What a missing key answers: NoSuchKey only to callers who may list the bucket."""
        if self.unrestricted or acl.may_see_missing_keys(
            self.principal.uid, self.record.owner, self.bucket_acl
        ):
            return exc
        return AccessDenied()


class AccessDecider:
    def __init__(self, buckets: BucketService, policies: Sequence[AccessPolicy] = ()) -> None:
        self.buckets = buckets
        self.policies = list(policies)

    async def decide(
        self,
        principal: Principal,
        name: str,
        operation: Operation,
        *,
        key: str | None = None,
        fresh: bool = False,
        expected_owner: str | None = None,
    ) -> Grant:
        """A grant for ``operation`` on bucket ``name``, or AccessDenied / NoSuchBucket.

        ``fresh`` reads the record from the backend (for operations whose
        answer is the record itself). ``expected_owner`` refuses a bucket owned
        by anyone else (S3's x-amz-expected-bucket-owner).
        """
        uid = principal.uid
        record = await self.buckets.get(name, use_cache=not fresh)
        if uid is not None and record.owner != uid and not fresh:
            # A cached record naming someone else may be of a bucket since re-created
            # by the caller: decide on the current one (non-owners pay a read anyway).
            record = await self.buckets.get(name, use_cache=False)
        if expected_owner is not None and expected_owner != record.owner:
            raise AccessDenied("the bucket is owned by someone else than expected")
        verdict = await self._judge(AccessRequest(principal, operation, record, key))
        if verdict is Verdict.DENY:
            raise AccessDenied(f"{operation} is denied by policy")
        if verdict is Verdict.ALLOW:
            return Grant(principal, operation, record, None, by_policy=True)
        if principal.is_service or (uid is not None and record.owner == uid):
            return Grant(principal, operation, record, None)
        return await self._by_acl(principal, operation, record)

    async def _by_acl(
        self, principal: Principal, operation: Operation, record: BucketRecord
    ) -> Grant:
        permission = operation.needs
        if permission is Permission.OWNER:
            raise AccessDenied()
        record, raw = await self.buckets.read_config(record.name, BUCKET_ACL_ITEM)
        bucket_acl = raw.decode() if raw else acl.PRIVATE
        grant = Grant(principal, operation, record, bucket_acl)
        if grant.unrestricted or permission.on_object or permission is Permission.ANYONE:
            return grant  # (re-read, the record may name the caller as owner now)
        if not acl.is_allowed(operation, principal.uid, record.owner, bucket_acl):
            raise AccessDenied()
        return grant

    async def _judge(self, request: AccessRequest) -> Verdict | None:
        allowed = False
        for policy in self.policies:
            verdict = await policy.judge(request)
            if verdict is Verdict.DENY:
                return Verdict.DENY
            allowed = allowed or verdict is Verdict.ALLOW
        return Verdict.ALLOW if allowed else None

    @staticmethod
    def may_use_config(
        principal: Principal, record: BucketRecord | None, item: str, operation: Operation
    ) -> None:
        """Configuration documents belong to the owner; preflights may read the CORS rules.

        With ``record`` None (before any I/O) only callers who could never be
        allowed are refused: an anonymous caller owns no bucket.
        """
        if operation.needs is Permission.ANYONE and item == CORS_ITEM:
            return
        if principal.is_service:
            return
        if principal.uid is None or (record is not None and principal.uid != record.owner):
            raise AccessDenied()
