"""Bytes in a bucket of an external S3 endpoint (AWS or any S3): what the cold tier
keeps its packs in.

Four verbs (put, ranged get, delete, list) over boto3, run in a thread pool of
this store's own so that slow remote calls never starve the event loop's
default executor. botocore's ``standard`` retry mode retries throttling,
5xx answers and connection errors with exponential backoff and jitter; what
is still failing after that surfaces as ``BackendUnavailable`` (the S3 front
end answers 503), a missing key as ``ObjectNotFound``. Credentials come from
the settings or, if none are given, boto3's usual chain (environment,
profile, instance role).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.errors import BackendUnavailable, ObjectNotFound

T = TypeVar("T")
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class RemoteSettings:
    endpoint: str  # e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:5000
    bucket: str
    prefix: str = "atonix/"  # every key this deployment writes starts with it
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    attempts: int = 5  # per request, backoff between them (botocore standard mode)
    timeout_seconds: float = 30.0  # connect and read, per attempt
    create_bucket: bool = True  # create the bucket on first use if it is missing

    @property
    def address(self) -> str:
        """Where the data goes, for logs and ``tier explain`` (never a credential)."""
        return f"{self.endpoint.rstrip('/')}/{self.bucket}/{self.prefix}"


class RemoteObjects:
    """One remote bucket (under ``settings.prefix``), as async calls."""

    def __init__(self, settings: RemoteSettings, threads: int = 8) -> None:
        self.settings = settings
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="remote-s3")
        self._client: Any = None
        self._checked = False

    def key(self, name: str) -> str:
        return self.settings.prefix + name

    # -- the place, as a split pool's catalog records it -----------------------------

    @property
    def address(self) -> str:
        return self.settings.address

    def record(self) -> bytes:
        """This place, for the catalog (credentials included, as the meta pool holds
        users' secret keys: whoever reads the deployment's pools owns it anyway)."""
        fields = ("endpoint", "bucket", "prefix", "region", "access_key", "secret_key")
        # No "kind": byte for byte what gateways before split pools wrote and read.
        return json.dumps({f: getattr(self.settings, f) for f in fields}).encode()

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RemoteObjects:
        return cls(RemoteSettings(**{k: v for k, v in record.items() if k != "kind"}))

    def same_place(self, other: object) -> bool:
        if not isinstance(other, RemoteObjects):
            return False
        a, b = self.settings, other.settings
        return (a.endpoint.rstrip("/"), a.bucket, a.prefix) == (
            b.endpoint.rstrip("/"), b.bucket, b.prefix)

    async def put(self, name: str, data: bytes) -> None:
        await self._call(self._sync_client().put_object, Bucket=self.settings.bucket,
                         Key=self.key(name), Body=data)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        end = "" if length is None else str(offset + length - 1)
        if length == 0:
            return b""
        got = await self._call(
            _read_body, self._sync_client(), Bucket=self.settings.bucket, Key=self.key(name),
            Range=f"bytes={offset}-{end}",
        )
        return got

    async def delete(self, name: str) -> None:
        await self._call(self._sync_client().delete_object, Bucket=self.settings.bucket,
                         Key=self.key(name))

    async def listing(self) -> AsyncIterator[tuple[str, float]]:
        """(name, last-modified epoch seconds) of every key under the prefix."""
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.settings.bucket, "Prefix": self.settings.prefix}
            if token:
                args["ContinuationToken"] = token
            page = await self._call(self._sync_client().list_objects_v2, **args)
            for item in page.get("Contents", ()):
                when = item["LastModified"]
                if isinstance(when, dt.datetime):
                    when = when.timestamp()
                yield item["Key"][len(self.settings.prefix):], float(when)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def check(self) -> None:
        """Reach the bucket (creating it if allowed): ``BackendUnavailable`` says why not."""
        if self._checked:
            return
        client = self._sync_client()
        try:
            await self._call(client.head_bucket, Bucket=self.settings.bucket)
        except ObjectNotFound:
            if not self.settings.create_bucket:
                raise BackendUnavailable(
                    f"remote bucket {self.settings.address} does not exist"
                ) from None
            where = {}
            if self.settings.region != "us-east-1":  # AWS wants it named elsewhere
                where = {"CreateBucketConfiguration": {"LocationConstraint": self.settings.region}}
            await self._call(client.create_bucket, Bucket=self.settings.bucket, **where)
        self._checked = True

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    # -- plumbing ---------------------------------------------------------------

    def _sync_client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            s = self.settings
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=s.endpoint, region_name=s.region,
                aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key,
                config=Config(
                    retries={"max_attempts": s.attempts, "mode": "standard"},
                    connect_timeout=s.timeout_seconds, read_timeout=s.timeout_seconds,
                    s3={"addressing_style": "path"},
                    max_pool_connections=self._threads._max_workers,
                ),
            )
        return self._client

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._threads, functools.partial(fn, *args, **kwargs)
            )
        except (ObjectNotFound, BackendUnavailable):
            raise
        except Exception as exc:  # botocore's errors, translated to the storage layer's
            raise _translated(exc, self.settings.address) from exc


def _read_body(client: Any, **kwargs: Any) -> bytes:
    answer = client.get_object(**kwargs)
    with answer["Body"] as body:
        return body.read()


def _translated(exc: Exception, address: str) -> Exception:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _MISSING or status == "404":
            return ObjectNotFound(f"{address}: {code or status}")
        if code == "InvalidRange":
            return ObjectNotFound(f"{address}: range past the end")
        return BackendUnavailable(f"remote S3 {address} answered {code or status}: "
                                  f"{err.get('Message', '')}")
    return BackendUnavailable(f"remote S3 {address} unreachable: {exc}")
