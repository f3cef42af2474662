"""Hand-built signed requests (botocore's signer, our own bytes) for edge cases SDKs avoid."""

from __future__ import annotations

import hashlib

import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET


class _UnsignedPayloadAuth(S3SigV4Auth):
    """Signs headers only: the body is sent as UNSIGNED-PAYLOAD (how large streams go)."""

    def _should_sha256_sign_payload(self, request) -> bool:
        return False


def sign_headers(
    endpoint: str,
    method: str,
    path: str,
    body: bytes = b"",
    query: str = "",
    headers: dict[str, str] | None = None,
    unsigned_payload: bool = False,
    access_key: str = TEST_ACCESS_KEY,
    secret: str = TEST_SECRET,
) -> dict[str, str]:
    url = endpoint + path + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if not unsigned_payload:
        req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    signer = _UnsignedPayloadAuth if unsigned_payload else S3SigV4Auth
    signer(Credentials(access_key, secret), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def signed_request(
    endpoint: str,
    method: str,
    path: str,
    body: bytes = b"",
    query: str = "",
    headers: dict[str, str] | None = None,
    send_body: bytes | None = None,
    **kwargs,
) -> requests.Response:
    """Sign ``body`` but send ``send_body`` (if given): the way to forge a tampered request."""
    signed = sign_headers(endpoint, method, path, body, query, headers, **kwargs)
    url = endpoint + path + (f"?{query}" if query else "")
    data = body if send_body is None else send_body
    return requests.request(method, url, data=data, headers=signed, timeout=60)
