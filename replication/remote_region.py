"""Another region's gateways, as the shipper talks to them: S3 over HTTP, signed with
the replication principal's key, plus the replica headers that keep a version's id,
stamp, time and ETag (``s3api.headers.replica_of`` reads them there).

Three calls: a replica PUT streamed from the source's reader (UNSIGNED-PAYLOAD,
so no second pass over the bytes to hash them; multipart past a size for a
plain S3 endpoint), a delete-marker replica, and a version delete. Endpoints are
tried in order; a failure of all of them is ``RegionUnavailable``, which the
shipper retries with backoff.
"""

from __future__ import annotations

import datetime
import json
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import yarl
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from defusedxml import ElementTree

from engine import HOLD_HEADER as LEGAL_HOLD_HEADER
from engine import MODE_HEADER as LOCK_MODE_HEADER
from engine import (
    NO_PRIMACY,
    OBJECT_ACL_HEADER,
    ObjectEntry,
    Primacy,
    StorageError,
    frame,
    framed_size,
)
from engine import UNTIL_HEADER as LOCK_UNTIL_HEADER

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
PRIMACY_HEADER = "x-atonix-replica-primacy"  # s3api.headers reads it there
ASK_BATCH = 4096  # fingerprints per question of a chunk-wise transfer (128 KiB)
_UNSIGNED_BODY = Config(s3={"payload_signing_enabled": False})  # UNSIGNED-PAYLOAD


class RegionUnavailable(StorageError):
    """No endpoint of the region answered, or one refused the request (``answered``)."""

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


class ChunksRefused(Exception):
    """The region could not take a version chunk-wise: send the whole body instead."""


class FencedOff(Exception):
    """The region's copy has a newer primacy than the sender's (engine.primacy): the
    sender's bucket was failed over from and is passive now."""

    def __init__(self, newer: Primacy, message: str) -> None:
        super().__init__(message)
        self.newer = newer


@dataclass(frozen=True)
class RegionSettings:
    name: str
    endpoints: tuple[str, ...]
    access_key: str
    secret_key: str
    s3_region: str = "us-east-1"  # what its gateways sign for (their --region)
    timeout_seconds: float = 30.0
    # A plain S3 endpoint (AWS, another vendor), not an Atonix region: whole objects
    # as new versions of its own ids, multipart past ``multipart_bytes``.
    plain: bool = False
    multipart_bytes: int = 64 * 1024 * 1024
    part_bytes: int = 16 * 1024 * 1024
    # A passive copy whose primary is this region promotes itself once the region has
    # not answered for this long (0: only ``atonix-cli replication failover``).
    auto_failover_seconds: float = 0.0


@dataclass
class RegionClient:
    settings: RegionSettings
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def put_replica(self, bucket: str, key: str, entry: ObjectEntry,
                          body: AsyncIterator[bytes], primacy: Primacy = NO_PRIMACY) -> None:
        headers = _object_headers(entry)
        if not self.settings.plain:
            headers.update(_replica_headers(entry, primacy) | _protection_headers(entry))
        else:  # the source version, for whoever reads the copy
            headers["x-amz-meta-atonix-version-id"] = entry.version_id or "null"
            if entry.size > self.settings.multipart_bytes:
                await self._multipart(bucket, key, headers, body)
                return
        headers["Content-Length"] = str(entry.size)
        await self._call("PUT", bucket, key, {}, headers, body)

    async def put_replica_chunks(self, bucket: str, key: str, entry: ObjectEntry,
                                 chunks: list[tuple[bytes, int]], body: AsyncIterator[bytes],
                                 primacy: Primacy = NO_PRIMACY) -> int:
        """A replica PUT that sends only the chunks the region lacks (engine.chunk_transfer):
        ask which it holds, in batches, then send frames; the bytes sent.
        ChunksRefused if the region cannot take it (the caller sends the whole body)."""
        fingerprints = b"".join(fp for fp, _ in chunks)
        held = bytearray()
        step = ASK_BATCH * 32
        for start in range(0, len(fingerprints), step):
            try:
                held += await self._call("POST", bucket, key, {"x-atonix-chunks": ""},
                                         {PRIMACY_HEADER: primacy.header()},
                                         fingerprints[start:start + step])
            except RegionUnavailable as exc:
                if exc.answered:
                    raise ChunksRefused(str(exc)) from None
                raise
        if len(held) != len(chunks):
            raise ChunksRefused("the region answered for other chunks than asked")
        sent = [flag != ord("1") for flag in held]
        headers = _object_headers(entry) | _replica_headers(entry, primacy) | _protection_headers(
            entry) | {
            "x-atonix-replica-encoding": "chunks", "x-atonix-replica-size": str(entry.size),
            "Content-Length": str(framed_size(chunks, sent))}
        if "-" not in entry.etag:
            headers["x-atonix-replica-md5"] = entry.etag.strip('"')
        try:
            await self._call("PUT", bucket, key, {}, headers, _frames(body, chunks, sent))
        except RegionUnavailable as exc:
            if exc.answered:  # a held chunk went meanwhile, say: the whole body then
                raise ChunksRefused(str(exc)) from None
            raise
        return sum(length for (_, length), send in zip(chunks, sent, strict=True) if send)

    async def put_marker_replica(self, bucket: str, key: str, entry: ObjectEntry,
                                 primacy: Primacy = NO_PRIMACY) -> None:
        plain = self.settings.plain  # there: a delete marker of its own making
        await self._call("DELETE", bucket, key, {},
                         {} if plain else _replica_headers(entry, primacy))

    async def delete_version(self, bucket: str, key: str, version_id: str,
                             primacy: Primacy = NO_PRIMACY) -> None:
        if self.settings.plain:
            return  # its versions have ids of its own: ours name none of them
        await self._call("DELETE", bucket, key, {"versionId": version_id},
                         {PRIMACY_HEADER: primacy.header()})

    async def digest(self, bucket: str, question: dict) -> dict:
        """Another region's answer to a verify question (s3api.handlers.replica_digest)."""
        answer = await self._call("POST", bucket, "", {"x-atonix-digest": ""}, {
            "Content-Type": "application/json"}, json.dumps(question).encode())
        return json.loads(answer)

    async def reachable(self, bucket: str) -> bool:
        """Whether some endpoint of the region answers at all (any HTTP status but a 5xx):
        what automatic failover watches."""
        try:
            await self._call("HEAD", bucket, "", {})
        except RegionUnavailable as exc:
            return exc.answered
        except FencedOff:
            return True
        return True

    async def _multipart(self, bucket: str, key: str, headers: dict[str, str],
                         body: AsyncIterator[bytes]) -> None:
        created = await self._call("POST", bucket, key, {"uploads": ""}, headers)
        upload = ElementTree.fromstring(created).findtext(f"{_NS}UploadId") or ""
        etags: list[str] = []
        try:
            async for part in _parts(body, self.settings.part_bytes):
                query = {"partNumber": str(len(etags) + 1), "uploadId": upload}
                _, answer = await self._request("PUT", bucket, key, query,
                                                {"Content-Length": str(len(part))}, part)
                etags.append(answer.get("ETag", ""))
            doc = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                          for n, e in enumerate(etags, 1))
            done = await self._call("POST", bucket, key, {"uploadId": upload}, {},
                                    f"<CompleteMultipartUpload>{doc}</CompleteMultipartUpload>"
                                    .encode())
            if _is_error(done):  # S3 may fail a Complete after its 200 has been sent
                raise RegionUnavailable(f"region {self.settings.name}: CompleteMultipartUpload "
                                        f"failed: {done[:300]!r}", answered=True)
        except BaseException:
            await self._call("DELETE", bucket, key, {"uploadId": upload})
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- plumbing ---------------------------------------------------------------

    async def _call(self, method: str, bucket: str, key: str, query: dict[str, str],
                    headers: dict[str, str] | None = None, body=None) -> bytes:
        return (await self._request(method, bucket, key, query, headers, body))[0]

    async def _request(self, method: str, bucket: str, key: str, query: dict[str, str],
                       headers: dict[str, str] | None = None, body=None,
                       ) -> tuple[bytes, Mapping[str, str]]:
        """(body, headers) of the first endpoint that answers 2xx."""
        errors, answered = [], False
        for endpoint in self.settings.endpoints:
            url = _url(endpoint, bucket, key, query)
            signed = self._sign(method, url, headers or {})
            try:
                async with self._client().request(
                        method, yarl.URL(url, encoded=True),  # keys with "..": as they are
                        headers=signed, data=body, allow_redirects=False) as answer:
                    payload = await answer.read()
                    if answer.status < 300:
                        return payload, answer.headers.copy()  # case-insensitive
                    errors.append(f"{endpoint}: {answer.status} {payload[:300]!r}")
                    if answer.status == 409:
                        _raise_if_fenced(payload)
                    if answer.status < 500:
                        answered = True
                        break  # refused: another endpoint of the region would refuse too
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{endpoint}: {exc}")
            if body is not None and not isinstance(body, bytes):
                break  # a streamed body cannot be sent twice
        raise RegionUnavailable(f"region {self.settings.name}: {'; '.join(errors)}",
                                answered=answered)

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


def _replica_headers(entry: ObjectEntry, primacy: Primacy) -> dict[str, str]:
    out = {"x-atonix-replica-version-id": entry.version_id or "",
           "x-atonix-replica-stamp": str(entry.stamp),
           "x-atonix-replica-mtime": repr(entry.mtime),
           PRIMACY_HEADER: primacy.header()}
    if "-" in entry.etag:  # a multipart ETag: not the MD5 of the bytes sent
        out["x-atonix-replica-etag"] = entry.etag
    return out


def _is_error(payload: bytes) -> bool:
    """Whether a 200 answer's body is an S3 ``<Error>`` document."""
    try:
        return ElementTree.fromstring(payload).tag.rpartition("}")[2] == "Error"
    except ElementTree.ParseError:
        return False


def _raise_if_fenced(payload: bytes) -> None:
    """FencedOff when a 409's error names the newer primacy that refused us."""
    try:
        error = ElementTree.fromstring(payload)
        epoch, primary = error.findtext("Epoch"), error.findtext("Primary")
        if error.findtext("Code") == "InvalidBucketState" and epoch and primary:
            raise FencedOff(Primacy(int(epoch), primary), error.findtext("Message") or "")
    except (ElementTree.ParseError, ValueError):
        return


def _protection_headers(entry: ObjectEntry) -> dict[str, str]:
    """The version's canned ACL, retention and legal hold, as a PUT asks for them (an
    Atonix region keeps them with the replica; a locked version needs a destination
    bucket with object lock, as in S3)."""
    stored = entry.headers
    out = {}
    if (canned := stored.get(OBJECT_ACL_HEADER)) is not None:
        out["x-amz-acl"] = canned
    mode, until = stored.get(LOCK_MODE_HEADER), stored.get(LOCK_UNTIL_HEADER)
    if mode is not None and until is not None:
        out["x-amz-object-lock-mode"] = mode
        out["x-amz-object-lock-retain-until-date"] = datetime.datetime.fromtimestamp(
            float(until), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if stored.get(LEGAL_HOLD_HEADER) == "ON":
        out["x-amz-object-lock-legal-hold"] = "ON"
    return out


def _object_headers(entry: ObjectEntry) -> dict[str, str]:
    """What a PUT of the version says of it: type, metadata, content headers, tags."""
    headers = {"Content-Type": entry.content_type}
    headers.update({f"x-amz-meta-{k}": v for k, v in entry.user_meta.items()})
    headers.update({k: v for k, v in entry.headers.items() if _content_header(k)})
    if entry.tags:
        headers["x-amz-tagging"] = urllib.parse.urlencode(entry.tags)
    return headers


async def _frames(body: AsyncIterator[bytes], chunks: list[tuple[bytes, int]],
                  sent: list[bool]) -> AsyncIterator[bytes]:
    """The version's frame stream: each chunk cut from the body, its bytes only if sent."""
    buffer = bytearray()
    n = 0
    async for piece in body:
        buffer += piece
        while n < len(chunks) and len(buffer) >= chunks[n][1]:
            fp, length = chunks[n]
            yield frame(fp, length, bytes(buffer[:length]) if sent[n] else None)
            del buffer[:length]
            n += 1
    if n != len(chunks) or buffer:
        raise ValueError("the version's bytes do not match its chunk list")


def _content_header(name: str) -> bool:
    return name in ("content-encoding", "content-disposition", "content-language",
                    "cache-control", "expires")


async def _parts(body: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The body in pieces of ``size`` bytes (the last one shorter)."""
    buffer = bytearray()
    async for piece in body:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
