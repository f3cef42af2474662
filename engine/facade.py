"""``Engine``: the engine's narrow interface, the one thing front ends and services call.

Every entry point that reads or writes takes a ``Principal`` first and has
the access decision (``engine.access.decision``) made before anything is
touched; nothing here reads ambient state. Work on one bucket goes through
the ``AuthorizedBucket`` that ``bucket()`` returns, decided for one
operation. Administration (users, fsck, garbage collection, space stats,
dedupe settings) is for service principals: the admin CLI and the
gateway's background runners.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from engine import maintenance
from engine.access.decision import AccessDecider, AccessPolicy
from engine.access.principal import Principal, require_principal
from engine.assembly import EngineSettings, ObjectEngine
from engine.authorized_bucket import AuthorizedBucket
from engine.chunked import DataPathObserver
from engine.clock import Clock
from engine.conditions import WriteCondition
from engine.copy import CopyPlan, copy_object
from engine.errors import (
    AccessDenied,
    NoSuchKey,
    NoSuchUser,
)
from engine.iam import AccessKey, IdentityStore
from engine.lease import DEFAULT_TTL_S, Lease
from engine.mfa import MfaDevices
from engine.object_lock import Retention
from engine.operations import Operation, Permission
from engine.point_in_time import Progress, RestoreReport
from engine.read_log import ReadLog, ReadTracking
from engine.records import BucketDedupe, BucketRecord, ObjectEntry
from engine.service_records import ServiceRecords
from engine.tiers import TierSettings
from storage import Backend


class Engine:
    def __init__(
        self, services: ObjectEngine, policies: Sequence[AccessPolicy] = (),
        reads: ReadTracking | None = None,
    ) -> None:
        self._services = services
        self._access = AccessDecider(services.buckets, policies)
        self._reads = ReadLog(services, reads)  # clients' reads, for tiering (engine.read_log)

    @classmethod
    def over(
        cls,
        backend: Backend,
        settings: EngineSettings | None = None,
        *,
        observer: DataPathObserver | None = None,
        clock: Clock | None = None,
        policies: Sequence[AccessPolicy] = (),
        reads: ReadTracking | None = None,
    ) -> Engine:
        """The engine over ``backend`` (not connected yet: ``start`` or ``connect``)."""
        return cls(ObjectEngine(backend, settings, observer, clock), policies, reads)

    @property
    def clock(self) -> Clock:
        return self._services.clock

    def now(self) -> dt.datetime:
        """The engine clock's time as an aware UTC datetime (signatures, policies)."""
        return dt.datetime.fromtimestamp(self.clock.time(), dt.UTC)

    # -- buckets ---------------------------------------------------------------------

    async def bucket(
        self,
        principal: Principal,
        name: str,
        operation: Operation,
        *,
        key: str | None = None,
        fresh: bool = False,
        expected_owner: str | None = None,
    ) -> AuthorizedBucket:
        """Bucket ``name`` for ``operation`` by ``principal``: AccessDenied or NoSuchBucket if not.

        ``fresh`` decides on the record read from the backend, not the cache
        (for operations whose answer is the record itself: HeadBucket,
        GetBucketLocation, DeleteBucket). ``expected_owner``: refuse a bucket
        someone else owns.
        """
        grant = await self._access.decide(
            require_principal(principal),
            name,
            Operation(operation),
            key=key,
            fresh=fresh,
            expected_owner=expected_owner,
        )
        return AuthorizedBucket(grant, self._services, self._reads)

    async def create_bucket(
        self,
        principal: Principal,
        name: str,
        region: str,
        configs: Mapping[str, bytes] | None = None,
        *,
        owner: str | None = None,
    ) -> BucketRecord:
        """A new bucket owned by ``principal`` (a user), with its first configuration documents;
        a service creates buckets for the ``owner`` it names (a restore re-creating one)."""
        if require_principal(principal).is_service and owner is not None:
            return await self._services.buckets.create(name, owner, region, configs)
        owner = principal.uid
        if owner is None:
            raise AccessDenied("only users own buckets")
        return await self._services.buckets.create(name, owner, region, configs)

    async def list_buckets(
        self,
        principal: Principal,
        *,
        prefix: str = "",
        start_after: str = "",
        region: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[BucketRecord], bool]:
        """A page of the buckets the principal owns (a service: all); whether more follow."""
        require_principal(principal)
        if principal.uid is None and not principal.is_service:
            return [], False  # anonymous callers own nothing
        return await self._services.buckets.list_page(
            None if principal.is_service else principal.uid,
            prefix=prefix,
            start_after=start_after,
            region=region,
            limit=limit,
        )

    async def bucket_region(self, name: str) -> str:
        """Where a bucket lives; public, as S3's x-amz-bucket-region is (NoSuchBucket if none)."""
        return (await self._services.buckets.get(name)).region

    async def read_bucket_config(
        self, principal: Principal, name: str, item: str, operation: Operation
    ) -> tuple[BucketRecord, bytes | None]:
        """A bucket's ``item`` document, decided on the very record it was read with."""
        operation = Operation(operation)
        self._access.may_use_config(require_principal(principal), None, item, operation)
        record, value = await self._services.buckets.read_config(name, item)
        self._access.may_use_config(principal, record, item, operation)
        return record, value

    async def write_bucket_config(
        self, principal: Principal, name: str, item: str, value: bytes | None, operation: Operation
    ) -> BucketRecord:
        """Set (None: remove) ``item``, decided on the record the write is guarded on."""
        operation = Operation(operation)
        self._access.may_use_config(require_principal(principal), None, item, operation)

        def authorize(record: BucketRecord) -> None:
            self._access.may_use_config(principal, record, item, operation)

        return await self._services.buckets.write_config(name, item, value, authorize)

    async def copy_object(
        self,
        source: AuthorizedBucket,
        source_key: str,
        destination: AuthorizedBucket,
        destination_key: str,
        plan: CopyPlan,
        source_version: str | None = None,
    ) -> tuple[ObjectEntry, ObjectEntry]:
        """Copy between two authorized buckets; the source entry actually read must be readable."""
        source.grant.permits(Permission.OBJECT_READ)
        destination.grant.permits(Permission.BUCKET_WRITE)
        await destination.may_write()

        def checked(entry: ObjectEntry, stream):
            source.grant.check_entry(entry)
            return plan(entry, stream)

        try:
            return await copy_object(
                self._services.objects,
                (source.record, source_key),
                (destination.record, destination_key),
                checked,
                source_version,
            )
        except NoSuchKey as exc:
            raise source.missing(exc) from None

    async def clone_object(
        self,
        source: AuthorizedBucket,
        source_key: str,
        destination: AuthorizedBucket,
        destination_key: str,
        *,
        source_version: str | None = None,
        retention: Retention | None = None,
        condition: WriteCondition | None = None,
    ) -> tuple[ObjectEntry, ObjectEntry]:
        """A new version of ``destination_key`` with the content and metadata of the source
        version, sharing its chunks (no chunk byte is read or written); (source, new entry).
        ``retention``: the new version's own (the destination must have object lock);
        ``condition``: what the destination key must hold, checked with the commit."""
        source.grant.permits(Permission.OBJECT_READ)
        destination.grant.permits(Permission.BUCKET_WRITE)
        await destination.may_write()
        entry = await source.head(source_key, source_version)
        new = await self._services.cloner.commit(
            entry, destination.record, destination_key, condition, retention
        )
        return entry, new

    def replace_tiers(self, principal: Principal, tiers: tuple[TierSettings, ...]) -> None:
        """Serve a new list of tiers (a reloaded tiering policy), hot first; writes and
        moves use them from the next call on, data on a dropped tier stays readable.
        Services only."""
        self._admin(principal)
        self._services.replace_tiers(tiers)

    @property
    def tiers(self) -> tuple[TierSettings, ...]:
        """The tiers the engine serves now."""
        return self._services.tiers.tiers

    async def end_due_restores(
        self, principal: Principal, buckets: list[str] | None = None
    ) -> int:
        """Drop the restored copies of archived versions whose restore has expired (all
        buckets, or those named): the tiering pass's upkeep. Services only; how many."""
        self._admin(principal)
        return await self._services.mover.end_due_restores(self.clock.time(), buckets)

    def records(self, principal: Principal, namespace: str) -> ServiceRecords:
        """The durable records of one service (backups, schedules): for services only."""
        self._admin(principal)
        return ServiceRecords(self._services.meta, namespace)

    async def restore(
        self,
        principal: Principal,
        bucket: str,
        at: float,
        *,
        prefix: str = "",
        to: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> RestoreReport:
        """Make ``bucket`` (or the bucket ``to``, created if missing) hold what ``bucket``
        held at ``at`` (seconds since the epoch) under ``prefix``; see engine.point_in_time."""
        self._admin(principal)
        return await self._services.restores.checked_run(
            bucket, at, self.clock.time(), prefix=prefix, to=to, dry_run=dry_run,
            progress=progress,
        )

    # -- identities ------------------------------------------------------------------

    def check_storage_class(self, storage_class: str) -> None:
        """InvalidStorageClass unless one of the deployment's tiers serves the class."""
        self._services.tiers.for_class(storage_class)

    async def access_key(self, access_key: str) -> AccessKey | None:
        """The key a request claims, to verify its signature with (None if unknown)."""
        return await self._services.identities.lookup_key(access_key)

    async def display_name(self, uid: str) -> str:
        return await self._services.identities.display_name(uid)

    async def user_exists(self, uid: str) -> bool:
        """Whether a user of that id exists (grants may name only existing users)."""
        try:
            await self._services.identities.get_user(uid)
        except NoSuchUser:
            return False
        return True

    async def user_by_email(self, email: str) -> str | None:
        """The id of the user with that e-mail address (case-insensitive), if any."""
        wanted = email.lower()
        users = await self._services.identities.list_users()
        return next((u.uid for u in users if u.email and u.email.lower() == wanted), None)

    def identities(self, principal: Principal) -> IdentityStore:
        """Users and their keys, for administration."""
        self._admin(principal)
        return self._services.identities

    def mfa_devices(self, principal: Principal) -> MfaDevices:
        """Users' MFA (TOTP) devices, for administration."""
        self._admin(principal)
        return self._services.mfa

    # -- administration -------------------------------------------------------------

    async def fsck(
        self, principal: Principal, *, repair: bool = False, stale_seconds: float | None = None
    ) -> maintenance.FsckResult:
        self._admin(principal)
        return await maintenance.run_fsck(
            self._services, repair=repair, stale_seconds=stale_seconds
        )

    async def collect_garbage(
        self, principal: Principal, grace_seconds: float | None = None
    ) -> maintenance.GcResult:
        self._admin(principal)
        return await maintenance.collect_garbage(self._services, grace_seconds)

    async def space_stats(
        self, principal: Principal, bucket: str | None = None
    ) -> list[tuple[BucketRecord, maintenance.SpaceStats]]:
        """Per bucket (all, or one): its objects, logical and stored bytes."""
        self._admin(principal)
        buckets = self._services.buckets
        records = (
            [await buckets.get(bucket, use_cache=False)] if bucket else await buckets.list()
        )
        return [(r, await maintenance.bucket_stats(self._services, r)) for r in records]

    async def chunk_pool_bytes(self, principal: Principal) -> tuple[int, int]:
        """(chunk objects, their bytes): what dedupe really stores."""
        self._admin(principal)
        return await maintenance.chunk_pool_bytes(self._services)

    async def dedupe_policy(self, principal: Principal, bucket: str) -> BucketDedupe:
        self._admin(principal)
        return await self._services.buckets.dedupe_policy(bucket)

    async def set_dedupe_policy(
        self, principal: Principal, bucket: str, policy: BucketDedupe
    ) -> None:
        self._admin(principal)
        await self._services.buckets.set_dedupe_policy(bucket, policy)

    @staticmethod
    def _admin(principal: Principal) -> None:
        if not require_principal(principal).is_service:
            raise AccessDenied("administration is for the gateway's own services")

    def lease(self, principal: Principal, name: str, ttl: float = DEFAULT_TTL_S) -> Lease:
        """The deployment-wide lease ``name``: one runner at a time across all gateways."""
        self._admin(principal)
        return Lease(self._services.meta, name, principal.name or "", ttl=ttl, clock=self.clock)

    # -- the process -----------------------------------------------------------------

    @property
    def backend_kind(self) -> str:
        return self._services.backend.kind

    async def start(self) -> None:
        """Connect, create missing pools, listen for other processes' changes (the
        hot cache), start the background release queue and the read stats' flusher."""
        await self._open(serving=True)
        self._services.releases.start()  # releases queued by a process that stopped first
        self._reads.start()

    async def connect(self) -> None:
        """Connect and create missing pools (an admin command's whole start); its
        writes are published to serving processes, it caches nothing itself."""
        await self._open(serving=False)

    async def _open(self, serving: bool) -> None:
        await self._services.backend.connect()
        await self._services.prepare()
        await self._services.attach(serving)

    async def stop(self) -> None:
        await self._reads.stop()  # flushes what is pending: a clean stop loses no reads
        await self._services.releases.stop()
        await self.close()

    async def close(self) -> None:
        """Disconnect (after ``connect``): close the backend, then the CPU pool."""
        await self._services.detach()
        await self._services.backend.close()
        self._services.close()

    async def healthy(self) -> None:
        await self._services.healthy()
