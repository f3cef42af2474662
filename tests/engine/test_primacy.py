"""Primacy and fencing by epoch (engine.primacy), on both backends: two deployments named
east and west, each with its copy of a bucket. A passive copy refuses clients'
writes and serves reads; the first shipment from a primary makes a copy passive;
a failover raises the epoch, and the old primary's later shipments are fenced off
with the newer primacy named, which it then adopts."""

from __future__ import annotations

import pytest

from engine import (
    BUCKET_ACL_ITEM,
    ENABLED,
    NO_PRIMACY,
    AccessDenied,
    InvalidRequestForBucket,
    Operation,
    PassiveCopy,
    Primacy,
    PutRequest,
    ReplicaFenced,
    ReplicaOf,
)
from tests.engine.conftest import OTHER, OWNER, SERVICE, engine_over
from tests.engine.tier_helpers import body_of, put, read


async def copy_of(engine, name: str):
    await engine.create_bucket(OWNER, name, "us-east-1")
    bucket = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    return bucket


async def shipped(bucket, key: str, version, data: bytes, primacy: Primacy):
    """``version`` (made in another region) as that region's shipper sends it."""
    of = ReplicaOf(version.version_id, version.stamp, version.mtime, primacy=primacy)
    return await bucket.put(key, PutRequest(body=body_of(data), size=len(data), replica=of))


@pytest.fixture
async def regions(backend_kind, tmp_path, clock):
    (tmp_path / "east").mkdir()
    (tmp_path / "west").mkdir()
    async with engine_over(backend_kind, tmp_path / "east", clock, region_name="east",
                           regions=("west",)) as east, \
            engine_over(backend_kind, tmp_path / "west", clock, region_name="west",
                        regions=("east",)) as west:
        yield east, west


async def test_a_failover_fences_the_old_primary_off(regions, clock):
    east, west = regions
    here, there = await copy_of(east, "photos"), await copy_of(west, "photos")
    assert await here.primacy() == NO_PRIMACY  # active-active until someone fails over
    await put(there, "k", b"both take writes")

    clock.advance(1.0)  # what east writes next is newer
    first = await here.fail_over()
    assert first == Primacy(1, "east") and await here.fail_over() == first  # idempotent
    made = await put(here, "k", b"east writes")
    await shipped(there, "k", made, b"east writes", first)  # the first shipment tells west
    assert await there.primacy(fresh=True) == first
    with pytest.raises(PassiveCopy) as refused:
        await put(there, "k", b"a client at the passive copy")
    assert refused.value.details == {"Primary": "east", "Epoch": "1"}
    assert await read(west, "photos", "k") == b"east writes"  # reads are served
    with pytest.raises(PassiveCopy):
        await there.delete("k")
    upkeep = await west.bucket(SERVICE, "photos", Operation.DELETE_OBJECT)
    await upkeep.delete("k")  # a service's upkeep (lifecycle) is the copy's own

    second = await there.fail_over()  # east is lost: west takes over
    assert second == Primacy(2, "west")
    await put(there, "k", b"west writes after the failover")
    stale = await put(here, "k", b"east, cut off and unaware")  # split brain: still epoch 1
    with pytest.raises(ReplicaFenced) as fenced:
        await shipped(there, "k", stale, b"east, cut off and unaware", first)
    assert fenced.value.details == {"Primary": "west", "Epoch": "2"}
    with pytest.raises(ReplicaFenced):
        await there.delete("k", version_id="whatever", shipped_by=first)
    with pytest.raises(ReplicaFenced):  # a sender without any primacy is older still
        await shipped(there, "k", stale, b"an active-active peer", NO_PRIMACY)
    with pytest.raises(InvalidRequestForBucket, match="does not know"):  # made up
        await shipped(there, "k", stale, b"a forged primacy", Primacy(9, "mars"))
    await west.write_bucket_config(OWNER, "photos", BUCKET_ACL_ITEM, b"public-read-write",
                                   Operation.PUT_BUCKET_ACL)
    grantee = await west.bucket(OTHER, "photos", Operation.DELETE_OBJECT, key="k")
    with pytest.raises(AccessDenied):  # a grantee cannot pass for another region
        await grantee.delete("k", version_id="whatever", shipped_by=Primacy(3, "west"))
    assert await read(west, "photos", "k") == b"west writes after the failover"

    service_side = await east.bucket(SERVICE, "photos", Operation.PUT_BUCKET_REPLICATION)
    assert await service_side.adopt_primacy(second) == second  # told by the refusal
    with pytest.raises(PassiveCopy):
        await put(here, "k", b"east is passive now")
    assert await service_side.adopt_primacy(first) == second  # never lowered


async def test_primacies_order_by_epoch_then_region():
    assert Primacy(2, "a") > Primacy(1, "z") > Primacy(1, "b") > NO_PRIMACY
    assert Primacy.decode(Primacy(12, "west").encode()) == Primacy(12, "west")
    assert Primacy(9, "b").encode() < Primacy(10, "a").encode()  # bytewise as by value
    assert Primacy.parse_header("3 east") == Primacy(3, "east")
    assert Primacy.parse_header(NO_PRIMACY.header()) == NO_PRIMACY
    for bad in ("x east", "-1 east", "2", "0 east", ""):
        with pytest.raises(ValueError):
            Primacy.parse_header(bad)


async def test_failover_needs_a_region_name(backend_kind, tmp_path, clock):
    async with engine_over(backend_kind, tmp_path, clock) as unnamed:
        bucket = await copy_of(unnamed, "photos")
        with pytest.raises(InvalidRequestForBucket, match="region_name"):
            await bucket.fail_over()
        await unnamed.write_bucket_config(OWNER, "photos", BUCKET_ACL_ITEM, b"public-read-write",
                                          Operation.PUT_BUCKET_ACL)
        with pytest.raises(AccessDenied):  # the owner's (or a service's) call only
            writer = await unnamed.bucket(OTHER, "photos", Operation.PUT_OBJECT, key="k")
            await writer.fail_over()
