"""PostObject: browser-based uploads from an HTML form (multipart/form-data).

The form fields come first and are read into memory (at most 20 KiB, as S3);
the ``file`` part is then streamed straight into the engine, never buffered
whole, with ``content-length-range`` enforced on the way (a body outside the
range raises before the engine commits, so nothing is stored). Fields after
the file are ignored. The caller is whoever signed the policy
(``s3api.post_policy``, SigV4 or the older HMAC-SHA1 form); a form without a
policy or credentials is anonymous, admitted only where the bucket's ACL
grants everyone WRITE (``public-read-write``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.helpers import parse_mimetype

from engine import Operation, PutRequest, with_object_acl
from s3api import checksums, post_policy, xml
from s3api import headers as h
from s3api.body import hashed
from s3api.checksums import ChecksumVerifier
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.handlers.acl import check_request_acl
from s3api.handlers.tagging import parse_tagging_document
from s3api.responses import empty, xml_response

PRE_DATA_LIMIT = 20 * 1024
READ_SIZE = 256 * 1024
DRAIN_LIMIT = 64 * 1024  # trailing form bytes read (and ignored) to keep the connection
_CREDENTIAL_FIELDS = (
    "x-amz-credential", "x-amz-signature", "x-amz-algorithm", "awsaccesskeyid", "signature"
)
_FILENAME_RE = re.compile(r'(?:^|;)\s*filename="([^"]*)"', re.IGNORECASE)
_FORM_READ_ERRORS = (ValueError, RuntimeError, AssertionError, UnicodeDecodeError)


def _file_name(part: BodyPartReader) -> str | None:
    """The file part's ``filename`` as sent (browsers escape ``"`` as %22, not with
    backslashes, so the raw text is taken: a Windows path keeps its separators)."""
    raw = _FILENAME_RE.search(part.headers.get("Content-Disposition", ""))
    return raw.group(1) if raw else part.filename


def _malformed() -> S3Error:
    return S3Error(S3ErrorCode.MalformedPOSTRequest)


def _multipart_reader(request: web.Request) -> MultipartReader:
    mimetype = parse_mimetype(request.headers.get("Content-Type", ""))
    if (mimetype.type, mimetype.subtype) != ("multipart", "form-data"):
        raise S3Error(
            S3ErrorCode.PreconditionFailed,
            Condition="Bucket POST must be of the enclosure-type multipart/form-data",
        )
    try:
        return MultipartReader(request.headers, request.content)
    except _FORM_READ_ERRORS:
        raise _malformed() from None


async def _read_field(part: BodyPartReader, budget: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(4096):
        data += chunk
        if len(data) > budget:
            raise S3Error(
                S3ErrorCode.MaxPostPreDataLengthExceeded,
                MaxPostPreDataLengthBytes=str(PRE_DATA_LIMIT),
            )
    return bytes(data)


async def _read_form(reader: MultipartReader) -> tuple[dict[str, str], BodyPartReader | None]:
    """The fields before the file (names lowercased, repeats joined by commas) and the file."""
    fields: dict[str, str] = {}
    used = 0
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                raise _malformed()
            name = part.name.lower()
            if name == "file":
                return fields, part
            data = await _read_field(part, PRE_DATA_LIMIT - used - len(name))
            used += len(name) + len(data)
            value = data.decode("utf-8")
            fields[name] = f"{fields[name]},{value}" if name in fields else value
    except _FORM_READ_ERRORS:
        raise _malformed() from None
    return fields, None


async def _authenticate(ctx: RequestContext, fields: dict[str, str], region: str) -> bool:
    """Verify the policy signature and make its signer the caller; False if anonymous."""
    if "policy" not in fields:
        if any(name in fields for name in _CREDENTIAL_FIELDS):
            raise S3Error(
                S3ErrorCode.InvalidArgument,
                post_policy.FIELD_MISSING.format("Policy"),
                ArgumentName="Policy",
                ArgumentValue="",
            )
        return False  # anonymous: the bucket's ACL decides
    access_key = post_policy.access_key_of(fields, region)
    key = await ctx.engine.access_key(access_key)

    def lookup_secret(candidate: str) -> str | None:
        return key.secret if key is not None and key.access_key == candidate else None

    post_policy.verify_signature(fields, region, lookup_secret)
    assert key is not None
    ctx.user = key.uid
    return True


def _content_md5(fields: dict[str, str]) -> bytes | None:
    value = fields.get("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error(S3ErrorCode.InvalidDigest)
    return digest


def _canned_acl(fields: dict[str, str], writer: str | None, bucket_owner: str) -> str | None:
    """The ACL the form asks for (its ``acl`` field), as the writer keeps it."""
    asked = {"x-amz-acl": fields["acl"]} if "acl" in fields else {}
    return check_request_acl(asked, "object", writer=writer, bucket_owner=bucket_owner)


def _tags(fields: dict[str, str]) -> dict[str, str] | None:
    """The ``tagging`` field: a Tagging XML document, as PutObjectTagging takes."""
    if "tagging" not in fields:
        return None
    return parse_tagging_document(fields["tagging"].encode())


async def _file_body(
    ctx: RequestContext, part: BodyPartReader, length_range: tuple[int, int] | None
) -> AsyncIterator[bytes]:
    low, high = length_range if length_range is not None else (0, None)
    size = 0
    while True:
        try:
            chunk = await part.read_chunk(READ_SIZE)
        except _FORM_READ_ERRORS:
            raise _malformed() from None
        if not chunk:
            break
        size += len(chunk)
        ctx.bytes_in += len(chunk)
        if high is not None and size > high:
            raise S3Error(
                S3ErrorCode.EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
                MaxSizeAllowed=str(high),
            )
        yield chunk
    if size < low:
        raise S3Error(
            S3ErrorCode.EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size",
            ProposedSize=str(size),
            MinSizeAllowed=str(low),
        )


async def _drain(reader: MultipartReader) -> bool:
    """Read (and ignore) what follows the file; False if there is too much of it."""
    total = 0
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return False
            while chunk := await part.read_chunk(4096):
                total += len(chunk)
                if total > DRAIN_LIMIT:
                    return False
    except _FORM_READ_ERRORS:
        return False
    return True


def _object_url(ctx: RequestContext, bucket: str, key: str) -> str:
    request = ctx.request
    path = "" if ctx.endpoint.target.virtual_host else "/" + bucket
    return f"{request.scheme}://{request.host}{path}/{quote(key, safe='')}"


def _answer(ctx: RequestContext, fields: dict[str, str], bucket: str, key: str, etag: str):
    location = _object_url(ctx, bucket, key)
    headers = {"ETag": etag, "Location": location}
    redirect = fields.get("success_action_redirect", fields.get("redirect"))
    if redirect and urlsplit(redirect).scheme in ("http", "https") and urlsplit(redirect).netloc:
        query = urlencode([("bucket", bucket), ("key", key), ("etag", etag)])
        headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
        return empty(303, headers)
    status = fields.get("success_action_status")
    if status == "201":
        body = xml.render(
            "PostResponse",
            [("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", etag)],
            namespace=None,
        )
        response = xml_response(body, 201)
        response.headers.update(headers)
        return response
    return empty(200 if status == "200" else 204, headers)


async def post_object(ctx: RequestContext) -> web.StreamResponse:
    assert ctx.endpoint.bucket is not None
    ctx.user = None  # only the policy signature authenticates a form upload
    region = await ctx.engine.bucket_region(ctx.endpoint.bucket)  # NoSuchBucket comes first
    reader = _multipart_reader(ctx.request)
    raw_fields, file_part = await _read_form(reader)
    if file_part is None:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "POST requires exactly one file upload per request.",
            ArgumentName="file",
            ArgumentValue="0",
        )
    if "key" not in raw_fields:
        raise post_policy.missing_field("key")
    signed = await _authenticate(ctx, raw_fields, region)
    fields = {
        name: post_policy.expand_filename(value, _file_name(file_part))
        for name, value in raw_fields.items()
    }
    length_range = None
    if signed:
        policy = post_policy.parse_policy(raw_fields["policy"])
        post_policy.check_policy(policy, fields, ctx.endpoint.bucket, ctx.engine.now())
        length_range = policy.length_range
    bucket = await authorized_bucket(ctx, key=fields["key"])
    canned = _canned_acl(fields, ctx.user, bucket.owner)
    tags = _tags(fields)
    # An x-amz-checksum-* field is the file's checksum: verified as it streams, then stored.
    verifier = ChecksumVerifier(checksums.parse_request(fields), checksums.DEFAULT_ALGORITHM)
    entry = await bucket.put(
        fields["key"],
        PutRequest(
            body=hashed(_file_body(ctx, file_part, length_range), verifier),
            size=None,
            content_type=fields.get("content-type"),
            user_meta=h.user_metadata(fields),
            headers=with_object_acl(h.stored_headers(fields), canned),
            content_md5=_content_md5(fields),
            tags=tags,
            checksums=lambda: verifier.results,
            storage_class=fields.get("x-amz-storage-class"),
        ),
    )
    response = _answer(ctx, fields, bucket.name, fields["key"], entry.etag)
    response.headers.update(h.version_headers(entry))
    if not await _drain(reader):
        response.force_close()
    return response


HANDLERS = {Operation.POST_OBJECT: post_object}
