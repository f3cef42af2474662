"""Large payloads are released in the background through a durable queue: the
request does not wait, the space still comes back, and a crash mid-release
loses nothing and leaks nothing (the next gateway finishes the work)."""

from __future__ import annotations

import os
import time

import pytest

from engine.records import MANIFESTS, Segment
from engine.release_queue import (
    ReleaseQueue,
    decode_segments,
    encode_segments,
    queue_object,
)
from tests.conftest import crash_points
from tests.contract.conftest import backend, pool  # noqa: F401  (fixtures)
from tests.test_dedupe_engine import DedupeGateway, _get

MiB = 1024 * 1024


def test_segments_round_trip():
    segs = [Segment("b1.u1", 5 * MiB, 1 << 30, 1, MANIFESTS), Segment("b1.u2", 7, 4 * MiB, 1)]
    assert decode_segments(encode_segments(segs)) == segs


async def test_another_process_s_record_is_adopted_only_when_old(pool):  # noqa: F811
    """A process releases its own records at once and leaves another's to it until
    the record is ``adopt_after`` old (that process may still be releasing it)."""
    now = [1_000_000.0]
    released: list[list[Segment]] = []

    async def remove(segments: list[Segment]) -> None:
        released.append(segments)

    queue = ReleaseQueue(pool, remove, inline_bytes=0, adopt_after=600, clock=lambda: now[0])
    theirs = [Segment("b1.theirs", 5 * MiB, 1 << 30, 1, MANIFESTS)]
    key = f"{now[0]:017.6f}.0123456789abcdef"  # queued by another process, just now
    await pool.omap_set(queue_object(3), {key: encode_segments(theirs)})
    mine = [Segment("b1.mine", 7 * MiB, 1 << 30, 1, MANIFESTS)]
    await queue.release(mine)
    await queue.drain()
    assert released == [mine]  # its own, not the young record of another process
    now[0] += 599
    assert await queue.drain() == 0
    now[0] += 2
    assert await queue.drain() == 1 and released == [mine, theirs]  # adopted
    assert await queue.pending() == []
    await queue.stop()


async def test_admin_drain_adopts_every_record(pool):  # noqa: F811
    released: list[list[Segment]] = []

    async def remove(segments: list[Segment]) -> None:
        released.append(segments)

    queue = ReleaseQueue(pool, remove, inline_bytes=0, adopt_after=600)
    theirs = [Segment("b1.theirs", 5 * MiB, 1 << 30, 1, MANIFESTS)]
    key = f"{time.time():017.6f}.0123456789abcdef"
    await pool.omap_set(queue_object(0), {key: encode_segments(theirs)})
    assert await queue.drain() == 0
    assert await queue.drain(adopt_after=0) == 1 and released == [theirs]


def _queued_gateway(kind, tmp_path) -> DedupeGateway:
    d = DedupeGateway(kind, tmp_path)
    # Everything above the inline limit goes through the queue, and a restarted
    # gateway adopts what a dead one left at once (not after 10 minutes).
    d.config.write_text(
        "gc_interval_seconds: 0\ngc_grace_seconds: 0\nrelease_inline_bytes: 1\n"
        "release_adopt_seconds: 0\n"
    )
    return d


def _wait_until_drained(d: DedupeGateway, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = d.cli("fsck", check=False)
        if report["pending_release"] == 0:
            return report
        assert time.monotonic() < deadline, "the release queue was never drained"
        time.sleep(0.5)


def test_queued_release_reclaims_everything(backend_kind, tmp_path):
    d = _queued_gateway(backend_kind, tmp_path)
    d.gw.start()
    s3 = d.gw.client()
    s3.create_bucket(Bucket="queued")
    first, second = os.urandom(2 * MiB), os.urandom(3 * MiB)
    s3.put_object(Bucket="queued", Key="k", Body=first)
    s3.put_object(Bucket="queued", Key="k", Body=second)  # first's payload is queued
    s3.put_object(Bucket="queued", Key="gone", Body=first[:MiB])
    s3.delete_object(Bucket="queued", Key="gone")
    assert _get(s3, "queued", "k") == second
    report = _wait_until_drained(d)
    assert report["orphan_manifests"] == [] and report["clean"], report
    d.gc_until_stable()
    kept = d.chunk_ids()
    assert kept and len(kept) <= 3 * MiB // (8 * 1024) + 1  # only the live object's chunks
    s3.delete_object(Bucket="queued", Key="k")
    _wait_until_drained(d)
    d.gc_until_stable()
    assert d.chunk_ids() == set()
    d.gw.stop()


@pytest.mark.parametrize(
    "backend_kind,point",
    crash_points("store.after_drop_ref", "engine.before_manifest_remove"),
    indirect=["backend_kind"],
)
def test_crash_while_draining_is_finished_by_the_next_start(backend_kind, tmp_path, point,
                                                              monkeypatch):
    d = _queued_gateway(backend_kind, tmp_path)
    d.gw.start()
    s3 = d.gw.client()
    s3.create_bucket(Bucket="queued")
    keep = os.urandom(MiB)
    s3.put_object(Bucket="queued", Key="keep", Body=keep)
    s3.put_object(Bucket="queued", Key="doomed", Body=os.urandom(2 * MiB))
    d.gw.stop()
    monkeypatch.setenv("ATONIX_FAILPOINTS", f"{point}=exit")
    d.gw.start()
    monkeypatch.delenv("ATONIX_FAILPOINTS")
    d.gw.client().delete_object(Bucket="queued", Key="doomed")  # acknowledged: queued
    assert d.gw.proc is not None and d.gw.proc.wait(timeout=30) == 137  # died draining
    d.gw.proc = None
    assert d.cli("fsck", check=False)["pending_release"] == 1  # the record survived
    d.gw.start()  # drains what the dead process left
    report = _wait_until_drained(d)
    assert report["clean"] and report["orphan_manifests"] == [], report
    d.gc_until_stable()
    s3 = d.gw.client()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="queued")["Contents"]] == ["keep"]
    assert _get(s3, "queued", "keep") == keep
    s3.delete_object(Bucket="queued", Key="keep")
    _wait_until_drained(d)
    d.gc_until_stable()
    assert d.chunk_ids() == set()
    d.gw.stop()


def test_a_corrupt_manifest_never_blocks_the_queue(backend_kind, tmp_path):
    d = _queued_gateway(backend_kind, tmp_path)
    d.gw.start()
    s3 = d.gw.client()
    s3.create_bucket(Bucket="queued")
    before = set(d.manifests())
    s3.put_object(Bucket="queued", Key="bad", Body=os.urandom(2 * MiB))
    [bad_oid] = set(d.manifests()) - before
    s3.put_object(Bucket="queued", Key="good", Body=os.urandom(2 * MiB))

    async def corrupt(_chunks, _data, meta):
        await meta.write_full(bad_oid, b"not a manifest")

    d.pools(corrupt)
    s3.delete_object(Bucket="queued", Key="bad")
    s3.delete_object(Bucket="queued", Key="good")
    _wait_until_drained(d)  # both records go: the corrupt one does not stall the other
    assert d.metric("atonix_integrity_errors_total") >= 1
    d.cli("fsck", "--repair", "--stale-after", "0")  # drops the references nothing names
    d.gc_until_stable()
    assert d.cli("fsck")["clean"]
    assert d.chunk_ids() == set()
    d.gw.stop()
