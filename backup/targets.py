"""Where backups go: a bucket of this deployment, or a bucket on any S3 endpoint.

Both kinds answer the same three questions: store a copy of one source
version (with COMPLIANCE retention when asked), stream a copy back, and
say where they are (an address for the run record, never a credential).

- ``BucketTarget`` clones: the copy shares the source version's chunks, so
  no unchanged chunk is ever sent again (``Engine.clone_object``).
- ``S3Target`` sends bytes with boto3, run in worker threads; bodies are
  spooled to memory or, past a few MiB, to a temporary file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from engine import (
    COMPLIANCE,
    NULL,
    AuthorizedBucket,
    Engine,
    NoSuchBucket,
    NoSuchKey,
    ObjectEntry,
    Operation,
    Principal,
    Retention,
    WriteCondition,
)

_SPOOL_BYTES = 8 * 1024 * 1024
_SINGLE_PUT_MAX = 5 * 1024**3
_READ_PIECE = 1024 * 1024


@dataclass(slots=True)
class StoredCopy:
    key: str
    version: str | None


class Target(Protocol):
    address: str

    async def prepare(self, lock: bool) -> None:
        """Check the target is usable (and, with ``lock``, that it has object lock)."""

    async def store(
        self, source: AuthorizedBucket, key: str, entry: ObjectEntry, to_key: str,
        lock_until: float | None,
    ) -> tuple[ObjectEntry, StoredCopy]:
        """Copy version ``entry`` of ``key``; (the source entry copied, where the copy is)."""

    async def extend_lock(self, copy: StoredCopy, until: float) -> None:
        """Extend a copy's COMPLIANCE retention (it can never be shortened)."""

    async def existing(self, to_key: str, etag: str) -> StoredCopy | None:
        """A copy already at ``to_key`` with that ETag (left by a run that died), if any."""

    def read(self, copy: StoredCopy) -> AsyncIterator[bytes]: ...


class BucketTarget:
    """A bucket of this deployment; copies are clones that share chunks."""

    def __init__(self, engine: Engine, principal: Principal, bucket: str) -> None:
        self.engine = engine
        self.principal = principal
        self.bucket = bucket
        self.address = f"bucket:{bucket}"

    async def _handle(self, op: Operation) -> AuthorizedBucket:
        return await self.engine.bucket(self.principal, self.bucket, op)

    async def prepare(self, lock: bool) -> None:
        handle = await self._handle(Operation.PUT_OBJECT)
        if lock and await handle.lock_config() is None:
            raise ValueError(f"--lock-days needs object lock on bucket {self.bucket}: create "
                             "it with x-amz-bucket-object-lock-enabled")

    async def store(
        self, source: AuthorizedBucket, key: str, entry: ObjectEntry, to_key: str,
        lock_until: float | None,
    ) -> tuple[ObjectEntry, StoredCopy]:
        destination = await self._handle(Operation.PUT_OBJECT)
        retention = Retention(COMPLIANCE, lock_until) if lock_until is not None else None
        copied, new = await self.engine.clone_object(
            source, key, destination, to_key,
            source_version=entry.version_id or NULL, retention=retention,
        )
        return copied, StoredCopy(to_key, new.version_id)

    async def existing(self, to_key: str, etag: str) -> StoredCopy | None:
        handle = await self._handle(Operation.HEAD_OBJECT)
        try:
            found = await handle.head(to_key)
        except NoSuchKey:
            return None
        return StoredCopy(to_key, found.version_id) if found.etag == etag else None

    async def extend_lock(self, copy: StoredCopy, until: float) -> None:
        handle = await self._handle(Operation.PUT_OBJECT_RETENTION)
        await handle.set_retention(copy.key, Retention(COMPLIANCE, until), copy.version)

    async def read(self, copy: StoredCopy) -> AsyncIterator[bytes]:
        handle = await self._handle(Operation.GET_OBJECT)
        entry = await handle.head(copy.key, copy.version)
        async for piece in handle.read(entry).body():
            yield piece

    async def clone_back(
        self, copy: StoredCopy, destination: AuthorizedBucket, key: str,
        condition: WriteCondition | None = None,
    ) -> ObjectEntry:
        """Restore a copy into ``destination`` by cloning it (no bytes move)."""
        handle = await self._handle(Operation.GET_OBJECT)
        _, new = await self.engine.clone_object(
            handle, copy.key, destination, key, source_version=copy.version or NULL,
            condition=condition,
        )
        return new


class S3Target:
    """A bucket on an S3 endpoint (another gateway, AWS, moto_server)."""

    def __init__(self, client: Any, endpoint: str, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.endpoint = endpoint.rstrip("/")
        self.address = f"{self.endpoint}/{bucket}"  # recorded with each run: no credentials

    async def prepare(self, lock: bool) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except Exception as exc:
            raise ValueError(f"backup target {self.address} at {self.endpoint}: {exc}") from None
        if lock:
            try:
                got = await asyncio.to_thread(
                    self.client.get_object_lock_configuration, Bucket=self.bucket
                )
            except Exception as exc:
                raise ValueError(f"--lock-days needs object lock on {self.address}: {exc}") \
                    from None
            if got.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
                raise ValueError(f"--lock-days needs object lock on {self.address}")

    async def store(
        self, source: AuthorizedBucket, key: str, entry: ObjectEntry, to_key: str,
        lock_until: float | None,
    ) -> tuple[ObjectEntry, StoredCopy]:
        extra: dict[str, Any] = {"ContentType": entry.content_type,
                                 "Metadata": dict(entry.user_meta), **_header_args(entry.headers)}
        if lock_until is not None:
            extra["ObjectLockMode"] = COMPLIANCE
            extra["ObjectLockRetainUntilDate"] = dt.datetime.fromtimestamp(lock_until, dt.UTC)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            async for piece in source.read(entry).body():
                spool.write(piece)
            spool.seek(0)
            if entry.size <= _SINGLE_PUT_MAX:
                got = await asyncio.to_thread(
                    self.client.put_object, Bucket=self.bucket, Key=to_key, Body=spool, **extra
                )
                return entry, StoredCopy(to_key, got.get("VersionId"))
            # Past S3's 5 GiB single PUT: boto3's managed multipart upload.
            await asyncio.to_thread(self.client.upload_fileobj, spool, self.bucket, to_key,
                                    ExtraArgs=extra)
        head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=to_key)
        return entry, StoredCopy(to_key, head.get("VersionId"))

    async def existing(self, to_key: str, etag: str) -> StoredCopy | None:
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket,
                                           Key=to_key)
        except ClientError:
            return None
        return StoredCopy(to_key, head.get("VersionId")) if head.get("ETag") == etag else None

    async def extend_lock(self, copy: StoredCopy, until: float) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": copy.key}
        if copy.version:
            args["VersionId"] = copy.version
        when = dt.datetime.fromtimestamp(until, dt.UTC)
        await asyncio.to_thread(self.client.put_object_retention, **args,
                                Retention={"Mode": COMPLIANCE, "RetainUntilDate": when})

    async def read(self, copy: StoredCopy) -> AsyncIterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": copy.key}
        if copy.version:
            args["VersionId"] = copy.version
        got = await asyncio.to_thread(self.client.get_object, **args)
        body = got["Body"]
        try:
            while True:
                piece = await asyncio.to_thread(body.read, _READ_PIECE)
                if not piece:
                    return
                yield piece
        finally:
            body.close()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The S3 endpoint ``s3://`` targets live on: config ``backup_endpoint:``, then the
    environment (ATONIX_BACKUP_ENDPOINT_URL, ATONIX_BACKUP_ACCESS_KEY and _SECRET_KEY, or
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)."""

    url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"

    @classmethod
    def configured(cls, doc: dict | None, env: Mapping[str, str], url: str | None = None):
        doc = dict(doc or {})
        unknown = set(doc) - {"url", "access_key", "secret_key", "region"}
        if unknown:
            raise ValueError(f"backup_endpoint: unknown keys {sorted(unknown)}")
        return cls(
            url or doc.get("url") or env.get("ATONIX_BACKUP_ENDPOINT_URL"),
            doc.get("access_key") or env.get("ATONIX_BACKUP_ACCESS_KEY")
            or env.get("AWS_ACCESS_KEY_ID"),
            doc.get("secret_key") or env.get("ATONIX_BACKUP_SECRET_KEY")
            or env.get("AWS_SECRET_ACCESS_KEY"),
            doc.get("region") or "us-east-1",
        )


def open_target(spec: str, engine: Engine, principal: Principal, endpoint: Endpoint) -> Target:
    """The target a spec names: ``s3://BUCKET`` on the endpoint, a run's recorded address
    (``http[s]://host:port/BUCKET``), or a bucket of this deployment (``NAME``)."""
    if spec.startswith("s3://"):
        bucket = spec[5:].strip("/")
        if not bucket or "/" in bucket:
            raise ValueError(f"backup target {spec!r}: s3://BUCKET")
        if not endpoint.url:
            raise ValueError(f"backup target {spec}: no S3 endpoint (--endpoint-url, "
                             "backup_endpoint: url in the config, or ATONIX_BACKUP_ENDPOINT_URL)")
        return S3Target(_client(endpoint, endpoint.url), endpoint.url, bucket)
    if spec.startswith(("http://", "https://")):
        parts = urlsplit(spec)
        url, bucket = f"{parts.scheme}://{parts.netloc}", parts.path.strip("/")
        return S3Target(_client(endpoint, url), url, bucket)
    name = spec.removeprefix("bucket:")
    return BucketTarget(engine, principal, name)


def _client(endpoint: Endpoint, url: str) -> Any:
    return s3_client(url, endpoint.access_key, endpoint.secret_key, endpoint.region)


_HEADER_ARGS = {
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
    "expires": "Expires",
}


def _header_args(headers: Mapping[str, str]) -> dict[str, Any]:
    """An object's stored content headers as boto3 put arguments."""
    out: dict[str, Any] = {}
    for name, arg in _HEADER_ARGS.items():
        if name in headers:
            value: Any = headers[name]
            if name == "expires":
                try:
                    value = parsedate_to_datetime(value)
                except (TypeError, ValueError):
                    continue  # not a date: S3 would not have stored it either
            out[arg] = value
    return out


def s3_client(endpoint: str, access_key: str | None, secret_key: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                      s3={"addressing_style": "path"}),
    )


async def bucket_exists(engine: Engine, principal: Principal, name: str) -> bool:
    try:
        await engine.bucket(principal, name, Operation.HEAD_BUCKET)
    except NoSuchBucket:
        return False
    return True
