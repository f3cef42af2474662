"""Another region's gateways, as the shipper talks to them: S3 over HTTP, signed with
the replication principal's key, plus the replica headers that keep a version's id,
stamp, time and ETag (``s3api.headers.replica_of`` reads them there).

Four calls: the versions of one key (ListObjectVersions with the key as
prefix), a replica PUT streamed from the source's reader (UNSIGNED-PAYLOAD,
so no second pass over the bytes to hash them), a delete-marker replica, and
a version delete. Endpoints are tried in order; a failure of all of them is
``RegionUnavailable``, which the shipper retries with backoff.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from defusedxml import ElementTree

from engine import ObjectEntry, StorageError

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_UNSIGNED_BODY = Config(s3={"payload_signing_enabled": False})  # UNSIGNED-PAYLOAD


class RegionUnavailable(StorageError):
    """No endpoint of the region answered, or one refused the request."""


@dataclass(frozen=True)
class RegionSettings:
    name: str
    endpoints: tuple[str, ...]
    access_key: str
    secret_key: str
    s3_region: str = "us-east-1"  # what its gateways sign for (their --region)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class RemoteVersion:
    version_id: str
    etag: str
    delete_marker: bool


@dataclass
class RegionClient:
    settings: RegionSettings
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def versions(self, bucket: str, key: str) -> dict[str, RemoteVersion]:
        """Every version of exactly ``key`` in the region's ``bucket``."""
        out: dict[str, RemoteVersion] = {}
        query = {"versions": "", "prefix": key}
        while True:
            body = await self._call("GET", bucket, "", query)
            root = ElementTree.fromstring(body)
            for item in root:
                tag = item.tag.removeprefix(_NS)
                if tag not in ("Version", "DeleteMarker") or item.findtext(f"{_NS}Key") != key:
                    continue
                vid = item.findtext(f"{_NS}VersionId") or ""
                out[vid] = RemoteVersion(vid, item.findtext(f"{_NS}ETag") or "",
                                         tag == "DeleteMarker")
            if root.findtext(f"{_NS}IsTruncated") != "true":
                return out
            query = {**query, "key-marker": root.findtext(f"{_NS}NextKeyMarker") or "",
                     "version-id-marker": root.findtext(f"{_NS}NextVersionIdMarker") or ""}

    async def put_replica(self, bucket: str, key: str, entry: ObjectEntry,
                          body: AsyncIterator[bytes]) -> None:
        headers = {**_replica_headers(entry), "Content-Type": entry.content_type,
                   "Content-Length": str(entry.size)}
        headers.update({f"x-amz-meta-{k}": v for k, v in entry.user_meta.items()})
        headers.update({k: v for k, v in entry.headers.items() if _content_header(k)})
        if entry.tags:
            headers["x-amz-tagging"] = urllib.parse.urlencode(entry.tags)
        await self._call("PUT", bucket, key, {}, headers, body)

    async def put_marker_replica(self, bucket: str, key: str, entry: ObjectEntry) -> None:
        await self._call("DELETE", bucket, key, {}, _replica_headers(entry))

    async def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        await self._call("DELETE", bucket, key, {"versionId": version_id})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- plumbing ---------------------------------------------------------------

    async def _call(self, method: str, bucket: str, key: str, query: dict[str, str],
                    headers: dict[str, str] | None = None, body=None) -> bytes:
        errors = []
        for endpoint in self.settings.endpoints:
            url = _url(endpoint, bucket, key, query)
            signed = self._sign(method, url, headers or {})
            try:
                async with self._client().request(method, url, headers=signed,
                                                  data=body) as answer:
                    payload = await answer.read()
                    if answer.status < 300:
                        return payload
                    errors.append(f"{endpoint}: {answer.status} {payload[:300]!r}")
                    if answer.status < 500:
                        break  # refused: another endpoint of the region would refuse too
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{endpoint}: {exc}")
            if body is not None:
                break  # a streamed body cannot be sent twice
        raise RegionUnavailable(f"region {self.settings.name}: {'; '.join(errors)}")

    def _sign(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers=headers)
        request.context["client_config"] = _UNSIGNED_BODY  # bodies stream, unhashed
        creds = Credentials(self.settings.access_key, self.settings.secret_key)
        S3SigV4Auth(creds, "s3", self.settings.s3_region).add_auth(request)
        return dict(request.headers.items())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                            sock_read=self.settings.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session


def _url(endpoint: str, bucket: str, key: str, query: dict[str, str]) -> str:
    path = "/" + urllib.parse.quote(bucket) + ("/" + urllib.parse.quote(key) if key else "")
    encoded = "&".join(
        f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}" if v != ""
        else urllib.parse.quote(k, safe="") for k, v in sorted(query.items()))
    return endpoint.rstrip("/") + path + (f"?{encoded}" if encoded else "")


def _replica_headers(entry: ObjectEntry) -> dict[str, str]:
    out = {"x-atonix-replica-version-id": entry.version_id or "",
           "x-atonix-replica-stamp": str(entry.stamp),
           "x-atonix-replica-mtime": repr(entry.mtime)}
    if "-" in entry.etag:  # a multipart ETag: not the MD5 of the bytes sent
        out["x-atonix-replica-etag"] = entry.etag
    return out


def _content_header(name: str) -> bool:
    return name in ("content-encoding", "content-disposition", "content-language",
                    "cache-control", "expires")
