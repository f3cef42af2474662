"""Shared helpers for the SigV4 unit tests: AWS example credentials, signed views."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock
from urllib.parse import quote, urlsplit

import botocore.session
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, _host_from_url
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from s3api import sigv4_canonical as canon
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import (
    AuthResult,
    HttpRequestView,
    verify_request,
)

AK = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = canon.EMPTY_SHA256
NOW = datetime(2013, 5, 24, tzinfo=UTC)
HOST = "examplebucket.s3.amazonaws.com"
ENDPOINT = "http://gateway.test:8080"


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == AK else None


def verify(view: HttpRequestView, now: datetime = NOW, **kw) -> AuthResult | None:
    return verify_request(view, lookup, now, **kw)


def raises(code: S3ErrorCode, view: HttpRequestView, now: datetime = NOW, **kw) -> S3Error:
    with pytest.raises(S3Error) as info:
        verify(view, now, **kw)
    assert info.value.code is code, (info.value.code, info.value.message)
    return info.value


def authorization(signed: str, signature: str, scope: str = "20130524/us-east-1/s3") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={AK}/{scope}/aws4_request,"
        f"SignedHeaders={signed},Signature={signature}"
    )


# -- botocore-signed requests ------------------------------------------------------------------


def signed_view(
    method: str = "GET",
    path: str = "/bucket/key",
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    presign: bool = False,
    expires: int = 3600,
    when: datetime = NOW,
    secret: str = SECRET,
    region: str = "us-east-1",
    payload_hash: str | None = None,
) -> HttpRequestView:
    """Sign with botocore's own S3 signers; return the request as the server sees it."""
    url = ENDPOINT + path + ("?" + query if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.headers["Host"] = _host_from_url(url)
    credentials = Credentials(AK, secret)
    signer = (
        S3SigV4QueryAuth(credentials, "s3", region, expires=expires)
        if presign
        else S3SigV4Auth(credentials, "s3", region)
    )
    naive = when.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
        if payload_hash is None:
            signer.add_auth(request)
        else:
            with mock.patch.object(signer, "payload", return_value=payload_hash):
                signer.add_auth(request)
    parts = urlsplit(request.url)
    return HttpRequestView(method, parts.path, parts.query, dict(request.headers.items()))


def replace(view: HttpRequestView, **changes) -> HttpRequestView:
    fields = {
        "method": view.method,
        "raw_path": view.raw_path,
        "raw_query": view.raw_query,
        "headers": dict(view.headers.items()),
    }
    fields.update(changes)
    return HttpRequestView(**fields)


def with_headers(view: HttpRequestView, **headers: str | None) -> HttpRequestView:
    merged = {k: v for k, v in view.headers.items()}
    for name, value in headers.items():
        name = name.replace("_", "-").lower()
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return replace(view, headers=merged)


def s3_path(bucket: str, key: str) -> str:
    # Exactly how botocore's S3 serializer puts a key on the wire.
    return f"/{bucket}/" + quote(key, safe="/~")


class _FakeRaw:
    def stream(self, *args, **kwargs):
        yield b""


def capture_client(endpoint: str = ENDPOINT):
    session = botocore.session.get_session()
    client = session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=AK,
        aws_secret_access_key=SECRET,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 0},
        ),
    )
    sent: list = []

    def before_send(request, **kwargs):
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _FakeRaw())

    client.meta.events.register("before-send.s3", before_send)
    return client, sent


def server_view(request) -> tuple[HttpRequestView, bytes]:
    parts = urlsplit(request.url)
    headers = {
        name: value.decode("utf-8") if isinstance(value, bytes) else value
        for name, value in request.headers.items()
    }
    if not any(name.lower() == "host" for name in headers):  # the CRT signer adds "host"
        headers["Host"] = _host_from_url(request.url)
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    body = body.encode() if isinstance(body, str) else (body or b"")
    return HttpRequestView(request.method, parts.path, parts.query, headers), body
