"""Delta chunks, on both backends: an edited chunk is stored as zstd against the chunk
it replaced, reads back exactly, keeps its base alive, and GC and fsck understand it."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid

import pytest

from dedupe import ChunkCollector, ChunkMissing, Codec, DedupeWriter, failpoints, fsck, read_all
from dedupe.chunk_format import encode_chunk, encode_delta
from dedupe.delta import MAX_RUN
from dedupe.refs import DELTA_OWNER_PREFIX
from dedupe.store import chunk_oid
from tests.dedupe.conftest import SMALL_CONFIG, pieces

SIZE = 120_000


def edited(data: bytes, at: int, length: int = 40, seed: int = 9) -> bytes:
    """``data`` with ``length`` bytes overwritten at ``at`` (one chunk changes)."""
    patch = random.Random(seed).randbytes(length)
    return data[:at] + patch + data[at + length :]


@pytest.fixture
def v1() -> bytes:
    return random.Random(1).randbytes(SIZE)


def deltas(manifest) -> list:
    return [e for e in manifest.entries if e.codec is Codec.ZSTD_DELTA]


async def delta_refs(store, fp: bytes) -> list[str]:
    return [o for o in await store.refs("hot", fp) if o.startswith(DELTA_OWNER_PREFIX)]


async def test_an_edit_is_stored_as_a_small_delta_and_reads_back(objects, store, v1):
    m1 = await objects.put("v1", v1)
    before = store.stats.bytes_stored
    v2 = edited(v1, SIZE // 2)
    m2 = await objects.put("v2", v2)
    # The chunk holding the edit, and the next one when the edit moved a cut: each a
    # delta, together far smaller than the ~3 KiB of one whole chunk here.
    new = [e for e in m2.entries if e.fingerprint not in {f.fingerprint for f in m1.entries}]
    assert new and new == deltas(m2)
    assert store.stats.bytes_stored - before < sum(e.length for e in new) // 2
    assert store.stats.deltas_created == len(new)
    assert await objects.get("v2") == v2
    assert await objects.get("v1") == v1
    # Each delta's base is a chunk it replaced, holding a reference that names it.
    replaced = {e.fingerprint for e in m1.entries} - {e.fingerprint for e in m2.entries}
    holders = [o for fp in replaced for o in await delta_refs(store, fp)]
    assert sorted(o.split(".")[0] for o in holders) == sorted(
        f"{DELTA_OWNER_PREFIX}{e.fingerprint.hex()}" for e in new
    )


async def test_the_base_outlives_its_old_manifest_and_goes_with_its_delta(objects, store, v1):
    await objects.put("v1", v1)
    await objects.put("v2", edited(v1, SIZE // 3))
    await objects.delete("v1")
    gc = ChunkCollector(store, grace_seconds=0)
    for _ in range(2):
        await gc.collect()
    assert await objects.get("v2") == edited(v1, SIZE // 3)  # its base was kept
    report = await fsck(store, await objects.live(), cpu=objects.cpu, stale_ref_seconds=0)
    assert report.clean and not report.orphans

    await objects.delete("v2")
    for _ in range(4):  # mark and remove the delta, then mark and remove its base
        await gc.collect()
    assert [fp async for fp in store.list_chunks("hot")] == []


async def test_missing_base_fails_the_read_and_fsck_reports_it(objects, store, pool, v1):
    m1 = await objects.put("v1", v1)
    m2 = await objects.put("v2", edited(v1, SIZE // 2))
    [delta, *_] = deltas(m2)
    old = {e.fingerprint for e in m1.entries} - {e.fingerprint for e in m2.entries}
    for fp in old:
        await pool.remove(chunk_oid(fp))
    store.cache = None
    with pytest.raises(ChunkMissing):
        await read_all(store, m2, cpu=objects.cpu)
    report = await fsck(store, [m2], cpu=objects.cpu)
    assert {(fp, reason.startswith("delta base")) for _, fp, reason in report.corrupt} == {
        (e.fingerprint, True) for e in deltas(m2)
    }
    assert delta in deltas(m2)


async def test_a_delta_is_never_the_base_of_another(store, cpu):
    rng = random.Random(4)
    a = rng.randbytes(8000)
    b = a[:4000] + rng.randbytes(30) + a[4030:]
    c = b[:6000] + rng.randbytes(30) + b[6030:]
    plain = encode_chunk(a)
    assert await store.put("hot", plain, "o1") is True
    db = encode_delta(b, plain.fingerprint, a)
    assert await store.put_delta("hot", db, plain.fingerprint, "o2") is True
    dc = encode_delta(c, db.fingerprint, b)
    assert await store.put_delta("hot", dc, db.fingerprint, "o3") is None  # refused
    assert await store.read_chunk("hot", db.fingerprint, cpu) == b


async def test_the_collector_never_drops_the_reference_of_a_re_created_delta(objects, store, v1):
    """GC removes a delta, then (before it releases the base) the same bytes are
    stored again as a delta of the same base: the new delta's reference survives."""
    await objects.put("v1", v1)
    v2 = edited(v1, SIZE // 2)
    await objects.put("v2", v2)
    await objects.delete("v2")
    gc = ChunkCollector(store, grace_seconds=0)

    stored_again = []

    async def store_again() -> None:
        stored_again.append(await objects.put("v2", v2))

    with failpoints.armed("gc.before_base_release", "hook", hook=store_again, times=1):
        for _ in range(2):
            await gc.collect()
    [m2] = stored_again
    assert len(deltas(m2)) == 1  # stored as a delta of the same base, again
    await objects.delete("v1")
    for _ in range(3):
        await gc.collect()
    assert await objects.get("v2") == v2
    report = await fsck(store, await objects.live(), cpu=objects.cpu, stale_ref_seconds=0)
    assert report.clean


async def test_a_crash_before_the_base_release_leaves_a_reference_fsck_drops(objects, store, v1):
    await objects.put("v1", v1)
    await objects.put("v2", edited(v1, SIZE // 2))
    await objects.delete("v2")
    await objects.delete("v1")
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()  # marks
    with failpoints.armed("gc.before_base_release"), pytest.raises(failpoints.FailpointHit):
        await gc.collect()
    report = await fsck(store, [], cpu=objects.cpu, repair=True, stale_ref_seconds=0)
    assert [o.startswith(DELTA_OWNER_PREFIX) for _, _, o in report.stale_refs] == [True]
    assert report.repaired == {"stale_refs": 1}
    for _ in range(3):
        await gc.collect()
    assert [fp async for fp in store.list_chunks("hot")] == []


class Written:
    """A minimal ManifestSource: the manifests written so far."""

    def __init__(self) -> None:
        self.by_owner: dict = {}

    async def load_manifest(self, owner: str):
        return self.by_owner.get(owner)

    async def put(self, store, cpu, data: bytes, config, piece: int = 7000) -> object:
        writer = DedupeWriter(store, uuid.uuid4().hex, config=config, cpu=cpu, manifests=self)
        manifest = await writer.consume(pieces(data, piece))
        self.by_owner[manifest.owner] = manifest
        return manifest


@pytest.mark.parametrize(
    "settings, expected",
    [({}, True), ({"min_saving": 1.0, "use_dictionary": False}, False),
     ({"delta_chunks": False}, False)],
    ids=["default", "compression-off", "deltas-off"],
)  # fmt: skip
async def test_deltas_follow_the_settings(store, cpu, v1, settings, expected):
    config = dataclasses.replace(SMALL_CONFIG, **settings)
    written = Written()
    await written.put(store, cpu, v1, config)
    m2 = await written.put(store, cpu, edited(v1, SIZE // 2), config)
    assert bool(deltas(m2)) is expected
    assert await read_all(store, m2, cpu=cpu) == edited(v1, SIZE // 2)


async def test_new_data_after_a_duplicate_stops_proposing_bases(store, cpu, v1):
    """A long run of new bytes after a duplicate is new data, not an edit: after
    MAX_RUN proposals the writer stops reading bases for it. (The chunk at the
    junction holds old bytes too: it may be a delta.)"""
    written = Written()
    await written.put(store, cpu, v1, SMALL_CONFIG)
    tail = random.Random(2).randbytes(400_000)
    reads_before = store.stats.chunks_read
    m2 = await written.put(store, cpu, v1[:20_000] + tail, SMALL_CONFIG)
    assert len(deltas(m2)) <= 1
    assert len(m2.entries) > 3 * MAX_RUN
    assert store.stats.chunks_read - reads_before <= MAX_RUN


async def test_a_slow_existence_check_never_hangs_the_upload(store, cpu):
    """The planner keeps a chunk's state until its successor has read it: a new
    chunk whose check is slow, while dozens of later duplicates finish, still completes."""
    config = dataclasses.replace(SMALL_CONFIG, write_window=16, use_dictionary=False)
    v1 = random.Random(5).randbytes(400_000)
    written = Written()
    await written.put(store, cpu, v1, config, piece=200_000)
    original = store.try_add_ref

    async def slow_when_new(tier, fp, owner):
        found = await original(tier, fp, owner)
        if not found:
            await asyncio.sleep(0.05)
        return found

    store.try_add_ref = slow_when_new
    v2 = edited(v1, 150_000)
    m2 = await asyncio.wait_for(written.put(store, cpu, v2, config, piece=200_000), timeout=60)
    assert await read_all(store, m2, cpu=cpu) == v2


async def test_fsck_repair_keeps_a_delta_whose_base_is_corrupt(objects, store, pool, v1):
    """The base is quarantined, the intact delta is not; storing the base's bytes
    again and repairing re-attaches it, and the delta reads again."""
    await objects.put("v1", v1)
    m2 = await objects.put("v2", edited(v1, SIZE // 2))
    links = {e.fingerprint: await store.delta_link("hot", e.fingerprint) for e in deltas(m2)}
    delta_fp, link = next(iter(links.items()))
    blob = bytearray(await pool.read(chunk_oid(link.base)))
    blob[-1] ^= 0xFF
    await pool.write_full(chunk_oid(link.base), bytes(blob))
    store.cache = None

    report = await fsck(store, await objects.live(), cpu=objects.cpu, repair=True)
    # The base; a delta of it may also be listed (base missing), if checked after it.
    dependents = {fp for fp, other in links.items() if other.base == link.base}
    assert link.base in {fp for _, fp, _ in report.corrupt} <= {link.base} | dependents
    assert report.repaired.get("quarantined") == 1  # the base only
    assert await store.delta_link("hot", delta_fp) == link  # the delta is still there
    report = await fsck(store, await objects.live(), cpu=objects.cpu)
    assert (delta_fp, f"delta base {link.base.hex()} missing") in [
        (fp, why) for _, fp, why in report.corrupt
    ]

    await objects.put("again", v1)  # the base's bytes, stored whole again
    report = await fsck(store, await objects.live(), cpu=objects.cpu, repair=True)
    assert report.repaired.get("missing_refs", 0) >= 1
    assert (await fsck(store, await objects.live(), cpu=objects.cpu)).clean
    assert await read_all(store, m2, cpu=objects.cpu) == edited(v1, SIZE // 2)
