"""HTTP-level behaviour over real sockets: 100-continue, chunked uploads, HEAD, dates,
keep-alive, the Server header, odd methods and anonymous callers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import socket
import uuid
import xml.etree.ElementTree as ET
from email.utils import format_datetime
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET
from tests.support.signing import sign_headers

SOCKET_TIMEOUT = 30  # a safety net against a hung test, not a timing assertion


def raw_connection(gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=SOCKET_TIMEOUT)
    return sock


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, bytes already read past the head) of the next response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, rest


def read_body(sock: socket.socket, headers: dict[str, str], already: bytes) -> bytes:
    length = int(headers.get("content-length", "0"))
    body = already
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


def host_of(gateway) -> str:
    return urlsplit(gateway.endpoint).netloc


# -- Expect: 100-continue -------------------------------------------------------------------


def test_expect_continue_put(gateway, s3, bucket):
    body = b"x" * 100_000
    path = f"/{bucket}/expect"
    headers = sign_headers(
        gateway.endpoint, "PUT", path, unsigned_payload=True,
        headers={"Expect": "100-continue", "Content-Length": str(len(body))},
    )
    headers["Host"] = host_of(gateway)
    with raw_connection(gateway) as sock:
        sock.sendall(request_head("PUT", path, headers))
        status, _, rest = read_response_head(sock)
        assert status == 100 and rest == b""
        sock.sendall(body)
        status, response_headers, _ = read_response_head(sock)
        assert status == 200
        assert response_headers["etag"] == '"' + hashlib.md5(body).hexdigest() + '"'
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == body


@pytest.mark.parametrize("signed_badly", [False, True])
def test_expect_continue_refused_before_the_body(gateway, s3, bucket, signed_badly):
    path = f"/{bucket}/refused"
    headers = {"Expect": "100-continue", "Content-Length": str(10 * 1024 * 1024)}
    if signed_badly:
        headers = sign_headers(
            gateway.endpoint, "PUT", path, unsigned_payload=True, headers=headers,
            secret="wrong" + TEST_SECRET[5:],
        )
    headers["Host"] = host_of(gateway)
    with raw_connection(gateway) as sock:
        sock.sendall(request_head("PUT", path, headers))
        # The refusal comes without a 100 and without the gateway waiting for the body.
        status, response_headers, rest = read_response_head(sock)
        assert status == 403
        assert response_headers.get("connection", "").lower() == "close"
        error = ET.fromstring(read_body(sock, response_headers, rest))
        expected = "SignatureDoesNotMatch" if signed_badly else "AccessDenied"
        assert error.findtext("Code") == expected
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


# -- chunked transfer encoding ---------------------------------------------------------------


def test_chunked_upload_unsigned_payload(gateway, s3, bucket):
    pieces = [b"a" * 70_000, b"b" * 5, b"c" * 300_000]
    path = f"/{bucket}/chunked"
    headers = sign_headers(gateway.endpoint, "PUT", path, unsigned_payload=True)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=SOCKET_TIMEOUT)
    try:
        conn.request("PUT", path, body=iter(pieces), headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    finally:
        conn.close()
    whole = b"".join(pieces)
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["ContentLength"] == len(whole)
    assert got["Body"].read() == whole


# -- HEAD, dates, keep-alive, Server ------------------------------------------------------------


def test_head_has_no_body_and_keeps_the_connection(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="h", Body=b"12345")
    with raw_connection(gateway) as sock:
        for key, expected in (("h", 200), ("missing", 404), ("h", 200)):
            headers = sign_headers(gateway.endpoint, "HEAD", f"/{bucket}/{key}")
            headers["Host"] = host_of(gateway)
            sock.sendall(request_head("HEAD", f"/{bucket}/{key}", headers))
            status, response_headers, rest = read_response_head(sock)
            assert status == expected
            assert rest == b""  # no body bytes follow a HEAD answer
            if expected == 200:
                assert response_headers["content-length"] == "5"
            assert response_headers["server"]


def sigv4_with_date_header(gateway, path: str, when: dt.datetime) -> dict[str, str]:
    """Sign a GET with the HTTP ``Date`` header instead of ``x-amz-date``, by hand."""
    host = host_of(gateway)
    stamp, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    headers = {"date": format_datetime(when, usegmt=True), "host": host,
               "x-amz-content-sha256": empty}
    names = sorted(headers)
    canonical = "\n".join(
        ["GET", path, "", *(f"{n}:{headers[n]}" for n in names), "", ";".join(names), empty]
    )
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + TEST_SECRET).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def test_date_header_instead_of_x_amz_date(gateway, bucket):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    resp = requests.get(
        f"{gateway.endpoint}/{bucket}", headers=sigv4_with_date_header(gateway, f"/{bucket}", now),
        timeout=SOCKET_TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Date"]  # every answer carries the server's date
    stale = now - dt.timedelta(hours=1)
    resp = requests.get(
        f"{gateway.endpoint}/{bucket}",
        headers=sigv4_with_date_header(gateway, f"/{bucket}", stale),
        timeout=SOCKET_TIMEOUT,
    )
    assert resp.status_code == 403
    assert ET.fromstring(resp.content).findtext("Code") == "RequestTimeTooSkewed"


def test_many_requests_on_one_connection(gateway, bucket):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=SOCKET_TIMEOUT)
    try:
        first_socket = None
        for i in range(60):
            path = f"/{bucket}/k{i % 5}"
            if i % 3 == 0:
                body = f"value {i}".encode()
                conn.request("PUT", path, body=body,
                             headers=sign_headers(gateway.endpoint, "PUT", path, body))
            elif i % 3 == 1:
                conn.request("GET", path, headers=sign_headers(gateway.endpoint, "GET", path))
            else:  # an error answer must not break the connection either
                missing = f"/{bucket}/missing{i}"
                conn.request("GET", missing, headers=sign_headers(gateway.endpoint, "GET", missing))
            resp = conn.getresponse()
            resp.read()
            assert resp.status in (200, 404)
            assert resp.getheader("Server")
            first_socket = first_socket or conn.sock
            assert conn.sock is first_socket  # never reconnected
    finally:
        conn.close()


def test_server_header_everywhere(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    answers = [
        requests.get(f"{gateway.endpoint}/{bucket}/k", timeout=SOCKET_TIMEOUT),  # 403
        requests.options(f"{gateway.endpoint}/{bucket}", timeout=SOCKET_TIMEOUT),  # 400
        requests.request("PATCH", f"{gateway.endpoint}/{bucket}", timeout=SOCKET_TIMEOUT),
    ]
    headers = sign_headers(gateway.endpoint, "GET", f"/{bucket}/k")
    answers.append(requests.get(f"{gateway.endpoint}/{bucket}/k", headers=headers,
                                timeout=SOCKET_TIMEOUT))
    for resp in answers:
        assert resp.headers["Server"] == "AtonixGateway"
        assert resp.headers["x-amz-request-id"]


# -- odd methods, anonymous callers ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PROPFIND", "TRACE", "MKCOL", "COPY"])
@pytest.mark.parametrize("where", ["", "/{bucket}", "/{bucket}/key"])
def test_unknown_methods_answer_405(gateway, bucket, method, where):
    path = where.format(bucket=bucket) or "/"
    resp = requests.request(method, gateway.endpoint + path, timeout=SOCKET_TIMEOUT)
    assert resp.status_code == 405
    root = ET.fromstring(resp.content)
    assert root.findtext("Code") == "MethodNotAllowed"
    assert root.findtext("RequestId") == resp.headers["x-amz-request-id"]


def test_unparseable_method_is_refused_and_serving_goes_on(gateway, s3, bucket):
    """A method token the HTTP parser does not know never reaches S3 routing (400)."""
    with raw_connection(gateway) as sock:
        sock.sendall(b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_response_head(sock)
        assert status == 400
    s3.put_object(Bucket=bucket, Key="after", Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"ok"


def test_anonymous_requests_are_denied(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    base = f"{gateway.endpoint}/{bucket}"
    attempts = [
        # (GET / answers an anonymous caller an empty bucket list: test_s3_multipart_edges.py)
        ("GET", f"/{bucket}", ""), ("GET", f"/{bucket}", "versions"),
        ("GET", f"/{bucket}", "acl"), ("GET", f"/{bucket}", "tagging"),
        ("GET", f"/{bucket}", "cors"), ("HEAD", f"/{bucket}", ""),
        ("GET", f"/{bucket}/k", ""), ("GET", f"/{bucket}/k", "acl"),
        ("PUT", f"/{bucket}/anon", ""), ("DELETE", f"/{bucket}/k", ""),
        ("PUT", f"/{bucket}", "tagging"), ("DELETE", f"/{bucket}", ""),
    ]
    for method, path, sub in attempts:
        url = gateway.endpoint + path + (f"?{sub}" if sub else "")
        resp = requests.request(method, url, data=b"x" if method == "PUT" else None,
                                timeout=SOCKET_TIMEOUT)
        assert resp.status_code == 403, (method, path, sub)
        if method != "HEAD":
            assert ET.fromstring(resp.content).findtext("Code") == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    assert requests.get(base + "?tagging", timeout=SOCKET_TIMEOUT).status_code == 403


def test_virtual_host_style_works_on_keep_alive(gateway, bucket):
    """Host header decides the bucket; several virtual-host requests share a connection."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=SOCKET_TIMEOUT)
    endpoint = f"http://{bucket}.localhost:{gateway.port}"
    try:
        for i in range(3):
            key = f"/vh{i}-{uuid.uuid4().hex[:4]}"
            body = b"vh"
            headers = sign_headers(endpoint, "PUT", key, body)
            headers["Host"] = f"{bucket}.localhost:{gateway.port}"
            conn.request("PUT", key, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
    finally:
        conn.close()
