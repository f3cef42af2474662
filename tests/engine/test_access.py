"""The engine decides access once, for every caller: no principal, no read or write.

These tests use only the engine's exported interface, on both backends,
the way an NFS front end, the admin CLI or a background runner would.
"""

from __future__ import annotations

import inspect

import pytest

import engine as api
from engine import (
    BUCKET_ACL_ITEM,
    OBJECT_ACL_HEADER,
    AccessDenied,
    AccessRequest,
    Engine,
    NoSuchBucket,
    NoSuchKey,
    Operation,
    Principal,
    PutRequest,
    Verdict,
)
from tests.engine.conftest import ANONYMOUS, OTHER, OWNER, SERVICE


async def _body(data: bytes):
    yield data


def _put(data: bytes, headers: dict[str, str] | None = None) -> PutRequest:
    return PutRequest(body=_body(data), size=len(data), headers=headers)


async def _bucket_with(engine: Engine, acl: str | None = None, name: str = "shared"):
    await engine.create_bucket(OWNER, name, "us-east-1")
    if acl is not None:
        await engine.write_bucket_config(
            OWNER, name, BUCKET_ACL_ITEM, acl.encode(), Operation.PUT_BUCKET_ACL
        )
    return name


# -- no principal, no call --------------------------------------------------------------


def test_every_reading_or_writing_entry_point_takes_a_principal_first():
    """The facade's shape: only the entry points that reveal nothing take no principal."""
    public = {
        name: member
        for name, member in inspect.getmembers(Engine)
        if not name.startswith("_") and callable(member) and not isinstance(member, property)
    }
    no_principal = {name for name, fn in public.items()
                    if "principal" not in inspect.signature(fn).parameters}
    # Building and running the process; authentication; what S3 reveals to anyone (a
    # bucket's region, whether a grantee exists); a copy or a clone, which take two decided
    # grants; whether the deployment's tiers serve a storage class (its configuration,
    # what a PUT with that class would be told anyway).
    assert no_principal == {
        "over", "start", "connect", "stop", "close", "healthy", "now",
        "access_key", "display_name", "bucket_region", "user_exists", "user_by_email",
        "copy_object", "clone_object", "check_storage_class",
    }


@pytest.mark.parametrize("nobody", [None, "alice", {"uid": "alice"}])
async def test_a_call_without_a_principal_can_neither_read_nor_write(engine, nobody):
    name = await _bucket_with(engine, "public-read-write")
    bucket = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    await bucket.put("k", _put(b"secret"))
    calls = [
        lambda: engine.bucket(nobody, name, Operation.GET_OBJECT),
        lambda: engine.bucket(nobody, name, Operation.PUT_OBJECT),
        lambda: engine.create_bucket(nobody, "other", "us-east-1"),
        lambda: engine.list_buckets(nobody),
        lambda: engine.read_bucket_config(nobody, name, "tagging", Operation.GET_BUCKET_TAGGING),
        lambda: engine.write_bucket_config(
            nobody, name, "tagging", b"x", Operation.PUT_BUCKET_TAGGING
        ),
        lambda: engine.fsck(nobody),
        lambda: engine.collect_garbage(nobody),
        lambda: engine.space_stats(nobody),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            await call()
    with pytest.raises(TypeError):
        engine.identities(nobody)
    reader = await engine.bucket(OWNER, name, Operation.GET_OBJECT)
    assert (await reader.head("k")).size == 6  # nothing was written or removed


# -- owners, ACLs and grants --------------------------------------------------------------


async def test_private_bucket_refuses_everyone_but_its_owner(engine):
    name = await _bucket_with(engine)
    await (await engine.bucket(OWNER, name, Operation.PUT_OBJECT)).put("k", _put(b"data"))
    for who in (OTHER, ANONYMOUS):
        for op in (Operation.LIST_OBJECTS_V2, Operation.PUT_OBJECT, Operation.DELETE_OBJECT):
            with pytest.raises(AccessDenied):
                await engine.bucket(who, name, op)
        reader = await engine.bucket(who, name, Operation.GET_OBJECT)
        with pytest.raises(AccessDenied):
            await reader.head("k")  # the object's own ACL (private) decides
        with pytest.raises(AccessDenied):
            await reader.head("missing")  # no listing right: no hint a key is absent
    service = await engine.bucket(SERVICE, name, Operation.GET_OBJECT)
    assert (await service.head("k")).size == 4


async def test_a_grant_serves_only_the_operation_it_was_decided_for(engine):
    name = await _bucket_with(engine, "public-read")
    lister = await engine.bucket(OTHER, name, Operation.LIST_OBJECTS)
    assert (await lister.list()).entries == []
    with pytest.raises(AccessDenied):
        await lister.put("k", _put(b"sneaky"))
    with pytest.raises(AccessDenied):
        await lister.delete("k")
    with pytest.raises(AccessDenied):
        await lister.write_config(BUCKET_ACL_ITEM, b"public-read-write")
    with pytest.raises(AccessDenied):
        await lister.delete_bucket()
    owner_view = await engine.bucket(OWNER, name, Operation.LIST_OBJECTS)
    assert (await owner_view.list()).entries == []  # nothing was written


async def test_object_reads_are_decided_by_the_entry_served(engine):
    name = await _bucket_with(engine, "public-read")
    writer = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    await writer.put("open", _put(b"o", {OBJECT_ACL_HEADER: "public-read"}))
    await writer.put("closed", _put(b"c"))
    reader = await engine.bucket(ANONYMOUS, name, Operation.GET_OBJECT)
    assert (await reader.head("open")).size == 1
    with pytest.raises(AccessDenied):
        await reader.head("closed")
    with pytest.raises(NoSuchKey):
        await reader.head("absent")  # public-read: listers may learn a key is missing


async def test_public_read_write_lets_anyone_write_but_not_administer(engine):
    name = await _bucket_with(engine, "public-read-write")
    writer = await engine.bucket(ANONYMOUS, name, Operation.PUT_OBJECT)
    await writer.put("k", _put(b"anon"))
    for op in (Operation.DELETE_BUCKET, Operation.PUT_BUCKET_ACL, Operation.GET_BUCKET_TAGGING):
        with pytest.raises(AccessDenied):
            await engine.bucket(ANONYMOUS, name, op)
    with pytest.raises(AccessDenied):
        await engine.read_bucket_config(OTHER, name, "tagging", Operation.GET_BUCKET_TAGGING)


async def test_expected_owner_is_checked_by_the_engine(engine):
    name = await _bucket_with(engine)
    await engine.bucket(OWNER, name, Operation.LIST_OBJECTS, expected_owner="alice")
    with pytest.raises(AccessDenied):
        await engine.bucket(OWNER, name, Operation.LIST_OBJECTS, expected_owner="mallory")


async def test_administration_is_for_services(engine):
    name = await _bucket_with(engine)
    for who in (OWNER, ANONYMOUS):
        with pytest.raises(AccessDenied):
            await engine.space_stats(who)
        with pytest.raises(AccessDenied):
            engine.identities(who)
        with pytest.raises(AccessDenied):
            await engine.dedupe_policy(who, name)
    assert [r.name for r, _ in await engine.space_stats(SERVICE)] == [name]
    assert await engine.list_buckets(ANONYMOUS) == ([], False)
    assert [r.name for r in (await engine.list_buckets(SERVICE))[0]] == [name]
    assert (await engine.list_buckets(OTHER))[0] == []


async def test_a_grant_is_pinned_to_the_bucket_it_was_decided_for(engine):
    """No ambient state: a bucket re-created after the decision never receives the call."""
    name = await _bucket_with(engine)
    grant = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    await (await engine.bucket(OWNER, name, Operation.DELETE_BUCKET, fresh=True)).delete_bucket()
    await engine.create_bucket(OWNER, name, "us-east-1")
    with pytest.raises(NoSuchBucket):
        await grant.put("k", _put(b"late"))
    fresh = await engine.bucket(OWNER, name, Operation.LIST_OBJECTS)
    assert (await fresh.list()).entries == []


# -- policies plug in without changing callers ----------------------------------------------


class _Judge:
    def __init__(self, verdicts: dict[tuple[str | None, Operation], Verdict]) -> None:
        self.verdicts = verdicts
        self.asked: list[AccessRequest] = []

    async def judge(self, request: AccessRequest) -> Verdict | None:
        self.asked.append(request)
        return self.verdicts.get((request.principal.uid, request.operation))


async def test_policy_hooks_deny_outright_and_allow_beyond_acls(engine):
    name = await _bucket_with(engine)
    judge = _Judge({
        ("alice", Operation.DELETE_OBJECT): Verdict.DENY,
        ("bob", Operation.PUT_OBJECT): Verdict.ALLOW,
    })
    guarded = Engine(engine._services, policies=[judge])
    with pytest.raises(AccessDenied):
        await guarded.bucket(OWNER, name, Operation.DELETE_OBJECT)  # even the owner
    bob = await guarded.bucket(OTHER, name, Operation.PUT_OBJECT, key="k")
    await bob.put("k", _put(b"allowed by policy"))
    assert judge.asked[-1].key == "k" and judge.asked[-1].bucket.name == name
    with pytest.raises(AccessDenied):
        await guarded.bucket(OTHER, name, Operation.DELETE_OBJECT)  # no opinion: the ACL


def test_every_exported_name_exists():
    for name in api.__all__:
        assert hasattr(api, name), name


def test_principals():
    assert Principal.user("u").uid == "u"
    assert Principal.anonymous().uid is None
    assert Principal.service("mover").uid is None and Principal.service("mover").is_service
    with pytest.raises(ValueError):
        Principal.user("")
