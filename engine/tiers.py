"""Storage tiers of the chunk store: the pool each tier's chunks live in, how hard
they are compressed, and which S3 storage classes are written to each.

The engine knows tiers only as places: which tier an object *belongs* on is
the tiering service's business (``tiering.policy``), which tells the engine
through ``EngineSettings.tiers`` and moves objects with
``AuthorizedBucket.transition``. The first tier is the hot one: its chunks
live in the deployment's chunk pool, and manifests name it ``default`` (the
name every manifest had before tiers), whatever the policy calls it.

An entry records the class the client asked for in ``x-amz-storage-class``
(absent for STANDARD, as S3 reports it) and the tier its payload is on in
``x-atonix-tier`` (absent for the hot tier), so listings and plans read
placements from the index alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from engine import layout
from engine.errors import InvalidStorageClass, UnknownTier
from engine.records import ObjectEntry, Segment
from storage.protocol import ErasureCode
from storage.remote_s3 import RemoteSettings

HOT_STORE_NAME = "default"
STORAGE_CLASS_HEADER = "x-amz-storage-class"
TIER_HEADER = "x-atonix-tier"
# A restore of an archived version: what HEAD and GET report (S3's own header), and
# until when its temporary copy (``ObjectEntry.restored``) may be read (epoch seconds).
RESTORE_HEADER = "x-amz-restore"
RESTORED_UNTIL_HEADER = "x-atonix-restored-until"
STANDARD = "STANDARD"
INTELLIGENT_TIERING = "INTELLIGENT_TIERING"
# Every class S3 defines; a class outside this set is refused whatever the tiers.
S3_STORAGE_CLASSES = frozenset({
    "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
    "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE",
})


@dataclass(frozen=True)
class TierSettings:
    name: str
    pool: str = ""  # not hot: its pool (empty: <prefix>.chunks.<name>); hot: <prefix>.chunks
    zstd_level: int = 3
    storage_classes: tuple[str, ...] = ()  # what a write asking for one lands here
    reported_class: str = STANDARD  # what an object moved here reports
    # A cold tier: its chunks' bytes live in this remote S3 bucket, in packs of
    # about ``pack_bytes`` (its pool is then only the catalog of those packs).
    remote: RemoteSettings | None = None
    pack_bytes: int = 0  # 0: the deployment's pack size (cold: COLD_PACK_BYTES)
    # Readable only through a restore (GLACIER, DEEP_ARCHIVE), as in S3.
    archive: bool = False
    # An erasure-coded tier: its chunks' bytes in an erasure-coded pool beside its own
    # (``erasure_pool``), which is then only the catalog of those packs.
    erasure: ErasureCode | None = None

    @property
    def write_once(self) -> bool:
        """Its packs' bytes are written whole, once (no deltas: each is an object)."""
        return self.remote is not None or self.erasure is not None


def erasure_pool(pool: str) -> str:
    """The erasure-coded pool holding the bytes of the tier whose catalog is ``pool``."""
    return f"{pool}.ec"


COLD_PACK_BYTES = 16 * 1024 * 1024  # fewer, larger remote objects than the local 4 MiB

DEFAULT_TIERS = (
    TierSettings("hot", storage_classes=(STANDARD, "REDUCED_REDUNDANCY", INTELLIGENT_TIERING)),
    TierSettings(
        "warm", zstd_level=9, storage_classes=("STANDARD_IA", "ONEZONE_IA"),
        reported_class="STANDARD_IA",
    ),
)


class TierMap:
    """The tiers of one deployment, by policy name and by the name manifests use."""

    def __init__(
        self,
        tiers: tuple[TierSettings, ...],
        pool_prefix: str,
        prepare: Callable[[TierSettings, str], Awaitable[None]] | None = None,
    ) -> None:
        """``prepare(tier, pool)``: make a tier usable (create its pool, reach its remote
        bucket) before its first write; idempotent, safe to race."""
        if not tiers:
            raise ValueError("at least the hot tier is needed")
        self.tiers = tiers
        self._prepare = prepare
        self._ready: set[str] = set()
        self.hot = tiers[0]
        self._prefix = pool_prefix
        self._by_name = {t.name: t for t in tiers}
        self._by_class = {c: t for t in reversed(tiers) for c in t.storage_classes}

    def tier(self, name: str) -> TierSettings:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTier(
                f"no tier {name!r} (tiers: {', '.join(self._by_name)})", Tier=name
            ) from None

    def for_class(self, storage_class: str | None) -> TierSettings:
        """The tier a write asking for ``storage_class`` lands on."""
        wanted = storage_class or STANDARD
        if wanted not in S3_STORAGE_CLASSES:
            raise InvalidStorageClass("The storage class you specified is not valid")
        found = self._by_class.get(wanted)
        if found is None:
            raise InvalidStorageClass(
                f"The storage class {wanted} is not served by this deployment's tiers"
            )
        return found

    def placed(self, headers: Mapping[str, str]) -> TierSettings:
        """The tier an entry's headers place it on (the hot tier if that tier is gone)."""
        return self._by_name.get(headers.get(TIER_HEADER, ""), self.hot)

    def store_name(self, tier: TierSettings) -> str:
        """The name manifests and the chunk store use for ``tier``."""
        return HOT_STORE_NAME if tier.name == self.hot.name else tier.name

    def hotter_than(self, tier: TierSettings) -> tuple[str, ...]:
        """Store names of the tiers hotter than ``tier``, hottest first."""
        names = [self.store_name(t) for t in self.tiers]
        mine = self.store_name(tier)
        return tuple(names[: names.index(mine)]) if mine in names else tuple(names)

    def name_of(self, store_name: str) -> str:
        """The policy's name for a tier as manifests name it (unknown names pass)."""
        return self.hot.name if store_name == HOT_STORE_NAME else store_name

    async def ready(self, tier: TierSettings) -> str:
        """The store name of ``tier``, its pool created if need be (the hot tier's is
        made with the deployment; another tier's on its first write, once per process)."""
        name = self.store_name(tier)
        if name != HOT_STORE_NAME and name not in self._ready and self._prepare is not None:
            await self._prepare(tier, self.pools().get(name) or self.default_pool(name))
            self._ready.add(name)
        return name

    def default_pool(self, name: str) -> str:
        """The pool a tier ``name`` has unless the policy names one."""
        return f"{layout.pool_name(self._prefix, layout.CHUNKS_POOL)}.{name}"

    def pools(self) -> Mapping[str, str]:
        """Store name -> pool name, hot first."""
        # The hot tier is the deployment's chunk pool, created with it.
        hot = layout.pool_name(self._prefix, layout.CHUNKS_POOL)
        out = {HOT_STORE_NAME: hot}
        for t in self.tiers[1:]:
            out[t.name] = t.pool or f"{hot}.{t.name}"
        return out


def placed_headers(
    headers: Mapping[str, str], tiers: TierMap, tier: TierSettings, storage_class: str | None
) -> dict[str, str]:
    """An entry's headers saying it is on ``tier``, asked for as ``storage_class``
    (None: what the tier reports, unless the object was written INTELLIGENT_TIERING)."""
    dropped = (STORAGE_CLASS_HEADER, TIER_HEADER, RESTORE_HEADER, RESTORED_UNTIL_HEADER)
    out = {k: v for k, v in headers.items() if k not in dropped}  # a restore is its source's
    if storage_class is None:
        asked = headers.get(STORAGE_CLASS_HEADER)
        storage_class = asked if asked == INTELLIGENT_TIERING else tier.reported_class
    if storage_class != STANDARD:
        out[STORAGE_CLASS_HEADER] = storage_class
    if tier.name != tiers.hot.name:
        out[TIER_HEADER] = tier.name
    return out


def storage_class_of(headers: Mapping[str, str]) -> str:
    """The class an entry reports (stored only when it is not STANDARD)."""
    return headers.get(STORAGE_CLASS_HEADER, STANDARD)


# -- restores of archived versions --------------------------------------------------


def readable_segments(tiers: TierMap, entry: ObjectEntry, now: float) -> list[Segment] | None:
    """The payload a read of ``entry`` uses: its own, or for an archived version its
    restored copy; None if it is archived and not restored (or the restore expired)."""
    if not tiers.placed(entry.headers).archive:
        return entry.segments
    if restored_until(entry) > now:
        return entry.restored or entry.segments  # an inline version keeps its bytes
    return None


def restored_until(entry: ObjectEntry) -> float:
    """Until when the version's restore lasts (0: not restored)."""
    try:
        return float(entry.headers.get(RESTORED_UNTIL_HEADER, "0"))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class RestoreRecord:
    """One restore's entry in the deployment's ``restores`` service records: what the
    tiering pass reads to end restores when they expire, without walking buckets."""

    bucket: str
    key: str
    version_id: str | None  # None: the version that was current (unversioned buckets)
    until: float

    @property
    def name(self) -> str:
        token = json.dumps([self.bucket, self.key, self.version_id]).encode()
        return hashlib.sha256(token).hexdigest()

    def encode(self) -> bytes:
        return json.dumps([self.bucket, self.key, self.version_id, self.until]).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RestoreRecord:
        bucket, key, version_id, until = json.loads(raw)
        return cls(bucket, key, version_id, float(until))


RESTORES_NAMESPACE = "restores"


def restore_expiry(now: float, days: int) -> float:
    """When a restore of ``days`` made at ``now`` ends: as S3, at the midnight (UTC)
    after ``days`` days have passed."""
    day = 86400
    return float((int(now + days * day) // day + 1) * day)


def restored_headers(headers: Mapping[str, str], until: float | None) -> dict[str, str]:
    """``headers`` saying the version is restored until ``until`` (None: not restored)."""
    out = {k: v for k, v in headers.items() if k not in (RESTORE_HEADER, RESTORED_UNTIL_HEADER)}
    if until is not None:
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(until))
        out[RESTORE_HEADER] = f'ongoing-request="false", expiry-date="{stamp}"'
        out[RESTORED_UNTIL_HEADER] = repr(until)
    return out

