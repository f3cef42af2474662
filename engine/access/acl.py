"""Who may do what by ACL: canned ACLs, grants and the decision they give (pure, no I/O).

The gateway supports the canned ACLs clients actually use, on buckets
(``private``, ``public-read``, ``public-read-write``, ``authenticated-read``)
and on objects (those plus ``bucket-owner-read`` and
``bucket-owner-full-control``). A canned ACL is the owner's FULL_CONTROL plus
a fixed set of grants to two groups: everyone (AllUsers, anonymous callers
included) and every authenticated user (AuthenticatedUsers).

How a grant maps onto operations, as AWS maps ACL permissions to actions:

* READ on a bucket: listing it (objects, versions, multipart uploads) and
  HeadBucket. It does not extend to the bucket's objects: as in AWS, each
  object's own ACL decides who may read it.
* WRITE on a bucket: creating, overwriting and deleting its objects, every
  step of a multipart upload and POST uploads.
* READ on an object: GET/HEAD of that object, in any bucket, private ones
  included.

* READ_ACP / WRITE_ACP: reading / replacing the ACL they are granted on
  (a bucket's or an object's); FULL_CONTROL is all of the above.

Besides the canned ACLs, an ACL may hold any grants to users and groups
(``encode_grants``: a JSON list of [kind, grantee, permission]; see
``s3api.acl_grants``). Everything else (tagging, configurations,
attributes, location, deleting the bucket) stays with the bucket's owner. Every object is owned by
its bucket's owner, even one written anonymously into a public-read-write
bucket, so the ``bucket-owner-*`` ACLs grant nothing beyond ``private``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from engine.operations import Operation, Permission

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
READ, WRITE = "READ", "WRITE"
READ_ACP, WRITE_ACP, FULL_CONTROL = "READ_ACP", "WRITE_ACP", "FULL_CONTROL"
PRIVATE = "private"

Grants = frozenset[tuple[str, str]]  # (group URI, permission)

_PUBLIC_READ: Grants = frozenset({(ALL_USERS, READ)})
_PUBLIC_READ_WRITE: Grants = frozenset({(ALL_USERS, READ), (ALL_USERS, WRITE)})
_AUTHENTICATED_READ: Grants = frozenset({(AUTHENTICATED_USERS, READ)})

# Canned ACL -> the group grants it adds to the owner's FULL_CONTROL.
BUCKET_ACLS: Mapping[str, Grants] = {
    PRIVATE: frozenset(),
    "public-read": _PUBLIC_READ,
    "public-read-write": _PUBLIC_READ_WRITE,
    "authenticated-read": _AUTHENTICATED_READ,
}
OBJECT_ACLS: Mapping[str, Grants] = {
    **BUCKET_ACLS,
    "bucket-owner-read": frozenset(),
    "bucket-owner-full-control": frozenset(),
}



def _needing(permission: Permission) -> frozenset[Operation]:
    return frozenset(op for op in Operation if op.needs is permission)


BUCKET_READ_OPERATIONS = _needing(Permission.BUCKET_READ)
BUCKET_WRITE_OPERATIONS = _needing(Permission.BUCKET_WRITE)
OBJECT_READ_OPERATIONS = _needing(Permission.OBJECT_READ)
# What each permission needs granted, and on which ACL (the bucket's or the object's).
_GRANT_NEEDED: Mapping[Permission, str] = {
    Permission.BUCKET_READ: READ,
    Permission.BUCKET_WRITE: WRITE,
    Permission.OBJECT_READ: READ,
    Permission.BUCKET_READ_ACP: READ_ACP,
    Permission.BUCKET_WRITE_ACP: WRITE_ACP,
    Permission.OBJECT_READ_ACP: READ_ACP,
    Permission.OBJECT_WRITE_ACP: WRITE_ACP,
}


def encode_grants(grants: Sequence[tuple[str, str, str]]) -> str:
    """An ACL of explicit grants, (kind, grantee, permission) each, as kept."""
    return json.dumps([list(g) for g in grants], separators=(",", ":"))


def decode_grants(acl: str | None) -> list[tuple[str, str, str]] | None:
    """The explicit grants of an ACL; None for a canned ACL (or none)."""
    if not acl or not acl.startswith("["):
        return None
    return [(str(k), str(w), str(p)) for k, w, p in json.loads(acl)]


def effective_acl(canned: str, level: str) -> str:
    """The canned ACL to store: one that grants the same as ``private`` is stored as it."""
    table = BUCKET_ACLS if level == "bucket" else OBJECT_ACLS
    return canned if table[canned] else PRIVATE


def canned_for_grants(grants: Grants, level: str) -> str | None:
    """The canned ACL whose group grants are exactly ``grants`` (None when none is)."""
    table = BUCKET_ACLS if level == "bucket" else OBJECT_ACLS
    return next((name for name, given in table.items() if given == grants), None)


def _groups(caller: str | None) -> tuple[str, ...]:
    return (ALL_USERS,) if caller is None else (ALL_USERS, AUTHENTICATED_USERS)


def grants_to(caller: str | None, acl: str | None, permission: str) -> bool:
    """Whether the ACL ``acl`` (None: private) grants ``permission`` to ``caller``."""
    explicit = decode_grants(acl)
    if explicit is None:
        given = OBJECT_ACLS.get(acl or PRIVATE, frozenset())  # a superset of BUCKET_ACLS
        return any((group, permission) in given for group in _groups(caller))
    groups = _groups(caller)
    for kind, who, granted in explicit:
        if granted not in (permission, FULL_CONTROL):
            continue
        if (kind == "group" and who in groups) or (kind == "user" and who == caller):
            return True
    return False


def needed(operation: Operation | str) -> Permission:
    """The permission ``operation`` needs; an operation this gateway does not know: OWNER."""
    try:
        return Operation(operation).needs
    except ValueError:
        return Permission.OWNER


def is_allowed(
    operation: Operation | str,
    caller: str | None,
    bucket_owner: str,
    bucket_acl: str | None,
    object_acl: str | None = None,
) -> bool:
    """Whether ``caller`` (None when anonymous) may perform ``operation``.

    ``bucket_acl`` and ``object_acl`` are canned ACL names or encoded grants
    (None: private); ``object_acl`` matters only to operations on one object.
    """
    if caller is not None and caller == bucket_owner:
        return True
    permission = needed(operation)
    if permission is Permission.ANYONE:
        return True
    if permission is Permission.OWNER:
        return False
    acl = object_acl if permission.on_object else bucket_acl
    return grants_to(caller, acl, _GRANT_NEEDED[permission])


def may_see_missing_keys(caller: str | None, bucket_owner: str, bucket_acl: str | None) -> bool:
    """Whether a missing key answers NoSuchKey (callers who may list) or AccessDenied."""
    return is_allowed(Operation.LIST_OBJECTS, caller, bucket_owner, bucket_acl)
