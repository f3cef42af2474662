"""Same-region replication in the engine, on both backends: the change log written with
each index change, versions shipped by state with their ids kept, delete markers and
version deletes, metadata changes, and convergence of two buckets that replicate
to each other whatever the order of writes and passes."""

from __future__ import annotations

import dataclasses
import random

import pytest

from engine import (
    COMPLETED,
    ENABLED,
    PENDING,
    REPLICA,
    REPLICATION_STATUS_HEADER,
    AccessDenied,
    Engine,
    InvalidBucketState,
    InvalidRequestForBucket,
    Operation,
    PutRequest,
    ReplicaOf,
    ReplicationConfig,
    ReplicationRule,
)
from replication.shipper import BucketShipper, rule_picker
from replication.verify import verify_local
from tests.engine.conftest import OTHER, OWNER, SERVICE
from tests.engine.tier_helpers import body_of, put, read


def rule(dest: str, **kw) -> ReplicationRule:
    return ReplicationRule(f"arn:aws:s3:::{dest}", rule_id=f"to-{dest}", priority=1, **kw)


async def versioned(engine: Engine, name: str):
    await engine.create_bucket(OWNER, name, "us-east-1")
    bucket = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    return bucket


async def admin(engine: Engine, name: str):
    return await engine.bucket(OWNER, name, Operation.PUT_BUCKET_REPLICATION)


async def service(engine: Engine, name: str):
    return await engine.bucket(SERVICE, name, Operation.PUT_BUCKET_REPLICATION)


async def versions(engine: Engine, name: str) -> list[tuple]:
    bucket = await engine.bucket(OWNER, name, Operation.LIST_OBJECT_VERSIONS)
    page = await bucket.list_versions()
    return [(k, e.version_id, e.etag, e.delete_marker, is_current, sorted(e.tags.items()))
            for k, e, is_current in page.versions]


async def ship(engine: Engine, name: str):
    report, _ = await BucketShipper(engine, SERVICE).ship(name)
    assert not report.failures, report.failures
    return report


async def test_changes_are_logged_with_the_write_and_shipped_by_state(engine):
    src = await versioned(engine, "source")
    await versioned(engine, "target")
    await put(src, "before", b"written before the configuration")
    await (await admin(engine, "source")).set_replication(ReplicationConfig((rule("target"),)))
    assert await (await service(engine, "source")).changes() == []  # earlier: no record
    first = await put(src, "k", b"one" * 1000)
    second = await put(src, "k", b"two" * 1000)
    assert second.headers[REPLICATION_STATUS_HEADER] == PENDING
    logged = await (await service(engine, "source")).changes()
    assert [c.key for c in logged] == ["k", "k"]
    report = await ship(engine, "source")
    assert (report.copied, report.trimmed) == (2, 2)
    assert await (await service(engine, "source")).changes() == []
    there = await versions(engine, "target")
    assert [(v[0], v[1], v[4]) for v in there] == [
        ("k", second.version_id, True), ("k", first.version_id, False)]
    assert await read(engine, "target", "k") == b"two" * 1000
    head = await (await engine.bucket(OWNER, "target", Operation.GET_OBJECT, key="k")).head("k")
    assert head.headers[REPLICATION_STATUS_HEADER] == REPLICA
    src_head = await (await engine.bucket(OWNER, "source", Operation.GET_OBJECT, key="k")).head("k")
    assert src_head.headers[REPLICATION_STATUS_HEADER] == COMPLETED
    assert (await ship(engine, "source")).copied == 0  # nothing new: nothing shipped


async def test_delete_markers_version_deletes_and_tags_follow(engine):
    src = await versioned(engine, "dm-source")
    await versioned(engine, "dm-target")
    config = ReplicationConfig((rule("dm-target", delete_markers=True),))
    await (await admin(engine, "dm-source")).set_replication(config)
    kept = await put(src, "k", b"kept")
    doomed = await put(src, "k", b"doomed")
    await ship(engine, "dm-source")
    await (await admin(engine, "dm-source")).update("k", _tagged)  # the current version's
    await ship(engine, "dm-source")
    assert (await versions(engine, "dm-target"))[0][5] == [("team", "a")]
    marker = await src.delete("k")
    await src.delete("k", version_id=doomed.version_id)
    await ship(engine, "dm-source")
    there = await versions(engine, "dm-target")
    assert [(v[1], v[3]) for v in there] == [(marker.version_id, True), (kept.version_id, False)]


def _tagged(entry):
    return dataclasses.replace(entry, tags={"team": "a"})


async def test_the_configuration_is_checked_as_s3_checks_it(engine):
    await engine.create_bucket(OWNER, "plain", "us-east-1")
    await versioned(engine, "vsrc")
    await engine.create_bucket(OWNER, "unversioned-target", "us-east-1")
    with pytest.raises(InvalidRequestForBucket, match="Versioning must be 'Enabled'"):
        await (await admin(engine, "plain")).set_replication(ReplicationConfig((rule("vsrc"),)))
    with pytest.raises(InvalidRequestForBucket, match="must exist"):
        await (await admin(engine, "vsrc")).set_replication(ReplicationConfig((rule("nope"),)))
    with pytest.raises(InvalidRequestForBucket, match="versioning enabled"):
        await (await admin(engine, "vsrc")).set_replication(
            ReplicationConfig((rule("unversioned-target"),)))
    with pytest.raises(InvalidRequestForBucket, match="regions"):
        await (await admin(engine, "vsrc")).set_replication(ReplicationConfig((
            ReplicationRule("arn:aws:s3:eu-west-9::elsewhere", priority=1),)))
    await versioned(engine, "vdst")
    await (await admin(engine, "vsrc")).set_replication(ReplicationConfig((rule("vdst"),)))
    with pytest.raises(InvalidBucketState):
        await (await engine.bucket(OWNER, "vsrc", Operation.PUT_BUCKET_VERSIONING)
               ).set_versioning("Suspended")


@pytest.mark.parametrize("seed", range(6))
async def test_two_buckets_replicating_to_each_other_converge(engine, seed):
    """Active-active: random writes, deletes and passes on both sides, in random order,
    end with the same versions everywhere and the same current one (newest stamp wins)."""
    rng = random.Random(seed)
    a, b = f"east-{seed}", f"west-{seed}"
    buckets = {a: await versioned(engine, a), b: await versioned(engine, b)}
    for name, other in ((a, b), (b, a)):
        await (await admin(engine, name)).set_replication(
            ReplicationConfig((rule(other, delete_markers=True),)))
    for step in range(30):
        name = rng.choice((a, b))
        action = rng.random()
        key = rng.choice(("x", "y"))
        if action < 0.6:
            await put(buckets[name], key, f"{name}-{step}".encode())
        elif action < 0.75:
            await buckets[name].delete(key)
        else:
            await ship(engine, name)
    for _ in range(2):
        await ship(engine, a)
        await ship(engine, b)
    assert await versions(engine, a) == await versions(engine, b)


async def test_acls_follow_and_the_log_is_the_services_alone(engine):
    src = await versioned(engine, "acl-source")
    await versioned(engine, "acl-target")
    await (await admin(engine, "acl-source")).set_replication(
        ReplicationConfig((rule("acl-target"),)))
    await put(src, "k", b"data")
    await ship(engine, "acl-source")
    owner = await engine.bucket(OWNER, "acl-source", Operation.PUT_OBJECT_ACL, key="k")
    await owner.set_object_acl("k", "public-read")
    assert [c.key for c in await (await service(engine, "acl-source")).changes()] == ["k"]
    await ship(engine, "acl-source")
    reader = await engine.bucket(OWNER, "acl-target", Operation.GET_OBJECT_ACL, key="k")
    source_acl = await (await engine.bucket(OWNER, "acl-source", Operation.GET_OBJECT_ACL,
                                            key="k")).object_acl("k")
    assert source_acl == "public-read" and await reader.object_acl("k") == source_acl
    with pytest.raises(AccessDenied):  # an owner holds no key to the change log
        await (await admin(engine, "acl-source")).changes()


async def test_a_destination_re_created_by_someone_else_gets_nothing(engine):
    src = await versioned(engine, "mine")
    await versioned(engine, "shared-name")
    await (await admin(engine, "mine")).set_replication(
        ReplicationConfig((rule("shared-name"),)))
    await (await engine.bucket(OWNER, "shared-name", Operation.DELETE_BUCKET)).delete_bucket()
    await engine.create_bucket(OTHER, "shared-name", "us-east-1")
    await put(src, "secret", b"not for bob")
    report, _ = await BucketShipper(engine, SERVICE).ship("mine")
    assert report.failures and report.copied == 0
    bob = await engine.bucket(OTHER, "shared-name", Operation.LIST_OBJECT_VERSIONS)
    assert (await bob.list_versions()).versions == []
    head = await (await engine.bucket(OWNER, "mine", Operation.GET_OBJECT, key="secret")).head(
        "secret")
    assert head.headers[REPLICATION_STATUS_HEADER] == PENDING  # not shipped anywhere


async def test_completed_only_once_every_destination_has_it(engine):
    src = await versioned(engine, "fan-source")
    await versioned(engine, "fan-one")
    two = await versioned(engine, "fan-two")
    await (await admin(engine, "fan-source")).set_replication(
        ReplicationConfig((rule("fan-one"), rule("fan-two"))))
    await two.set_versioning("Suspended")  # the second destination can take no replica
    await put(src, "k", b"data")
    report, _ = await BucketShipper(engine, SERVICE).ship("fan-source")
    assert report.failures
    assert [v[0] for v in await versions(engine, "fan-one")] == ["k"]
    head = await (await engine.bucket(OWNER, "fan-source", Operation.GET_OBJECT, key="k")).head(
        "k")
    assert head.headers[REPLICATION_STATUS_HEADER] == PENDING
    await two.set_versioning(ENABLED)
    await ship(engine, "fan-source")
    head = await (await engine.bucket(OWNER, "fan-source", Operation.GET_OBJECT, key="k")).head(
        "k")
    assert head.headers[REPLICATION_STATUS_HEADER] == COMPLETED


async def test_removing_a_replica_never_removes_its_original(engine):
    a, b = await versioned(engine, "origin"), await versioned(engine, "mirror")
    for name, other in (("origin", "mirror"), ("mirror", "origin")):
        await (await admin(engine, name)).set_replication(
            ReplicationConfig((rule(other, delete_markers=True),)))
    original = await put(a, "k", b"the only copy that matters")
    await ship(engine, "origin")
    await b.delete("k", version_id=original.version_id)  # the replica, by its id
    await ship(engine, "mirror")
    assert [v[1] for v in await versions(engine, "origin")] == [original.version_id]
    assert await read(engine, "origin", "k") == b"the only copy that matters"


async def test_verify_finds_planted_differences_and_repair_removes_them(engine):
    src = await versioned(engine, "verify-source")
    dst = await versioned(engine, "verify-target")
    config = ReplicationConfig((rule("verify-target", delete_markers=True),))
    await (await admin(engine, "verify-source")).set_replication(config)
    made = {f"k{i:03d}": await put(src, f"k{i:03d}", f"v{i}".encode() * 100)
            for i in range(300)}
    await ship(engine, "verify-source")

    async def check(repair: bool = False):
        return await verify_local(await service(engine, "verify-source"),
                            await service(engine, "verify-target"),
                            lambda key: rule_picker(config, key, config.rules[0].destination),
                            repair=repair)

    clean = await check()
    assert clean.keys == [] and clean.exchanges == 3  # equal: one exchange
    # Planted: a replica removed, one replaced with other bytes under its id, an extra
    # version written at the destination itself.
    await dst.delete("k007", version_id=made["k007"].version_id)
    forged = ReplicaOf(made["k100"].version_id, made["k100"].stamp, made["k100"].mtime)
    writer = await engine.bucket(SERVICE, "verify-target", Operation.PUT_OBJECT)
    await writer.put("k100", PutRequest(body=body_of(b"other bytes"), size=11, replica=forged))
    await put(dst, "k250", b"written there")
    found = await check()
    assert found.keys == ["k007", "k100", "k250"]
    assert found.exchanges < 30
    repaired = await check(repair=True)
    assert repaired.repaired == 3
    assert (await check()).keys == ["k250"]  # an original of the destination's stays
    assert await read(engine, "verify-target", "k100") == b"v100" * 100
    assert await read(engine, "verify-target", "k007") == b"v7" * 100
