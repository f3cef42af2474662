"""Bad input over real HTTP: each gets AWS's code, status and XML body, and changes nothing."""

from __future__ import annotations

import contextlib
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from tests.support.gateway_process import TEST_SECRET
from tests.support.signing import signed_request


def parse_error(resp) -> dict[str, str]:
    assert resp.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(resp.content)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def test_error_body_shape(gateway, bucket):
    resp = signed_request(gateway.endpoint, "GET", f"/{bucket}/missing-key")
    assert resp.status_code == 404
    err = parse_error(resp)
    assert err["Code"] == "NoSuchKey"
    assert err["Resource"] == f"/{bucket}/missing-key"
    assert err["RequestId"] == resp.headers["x-amz-request-id"]
    assert err["Message"]
    assert resp.headers["Server"]


def test_unsigned_request_is_denied(gateway, bucket):
    resp = requests.get(f"{gateway.endpoint}/{bucket}")
    assert resp.status_code == 403
    assert parse_error(resp)["Code"] == "AccessDenied"
    resp = requests.put(f"{gateway.endpoint}/{bucket}/anon", data=b"x")
    assert resp.status_code == 403


def test_wrong_secret(gateway, bucket):
    client = gateway.client(secret="wrong" + TEST_SECRET[5:])
    with pytest.raises(ClientError) as e:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        gateway.client().head_object(Bucket=bucket, Key="k")  # nothing was written


def test_unknown_access_key(gateway):
    client = gateway.client(access_key="NOSUCHKEY00000000000")
    with pytest.raises(ClientError) as e:
        client.list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_is_not_stored(gateway, bucket):
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}/tampered", body=b"original", send_body=b"tampered"
    )
    assert resp.status_code == 400
    assert parse_error(resp)["Code"] == "XAmzContentSHA256Mismatch"
    assert signed_request(gateway.endpoint, "HEAD", f"/{bucket}/tampered").status_code == 404


def test_malformed_xml(gateway):
    name = "x-" + uuid.uuid4().hex[:12]
    resp = signed_request(gateway.endpoint, "PUT", f"/{name}", body=b"<CreateBucketConfiguration")
    assert resp.status_code == 400
    assert parse_error(resp)["Code"] == "MalformedXML"
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<CreateBucketConfiguration><LocationConstraint>&b;</LocationConstraint>"
        b"</CreateBucketConfiguration>"
    )
    resp = signed_request(gateway.endpoint, "PUT", f"/{name}", body=evil)
    assert parse_error(resp)["Code"] == "MalformedXML"
    assert signed_request(gateway.endpoint, "HEAD", f"/{name}").status_code == 404


def test_not_implemented_operation(gateway, bucket):
    body = b"<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument>" \
        b"</WebsiteConfiguration>"
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", query="website", body=body)
    assert resp.status_code == 501
    assert parse_error(resp)["Code"] == "NotImplemented"


def test_method_not_allowed(gateway):
    resp = signed_request(gateway.endpoint, "DELETE", "/")
    assert resp.status_code == 405
    assert parse_error(resp)["Code"] == "MethodNotAllowed"


def test_other_users_bucket_is_denied(gateway, bucket):
    from tests.support.gateway_process import create_test_user

    key, secret = "OTHER" + uuid.uuid4().hex[:15].upper(), "s" * 40
    create_test_user(gateway.options, uid="other-" + uuid.uuid4().hex[:6], access_key=key,
                     secret=secret)
    other = gateway.client(access_key=key, secret=secret)
    assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    for call in (
        lambda: other.list_objects_v2(Bucket=bucket),
        lambda: other.put_object(Bucket=bucket, Key="intruder", Body=b"x"),
        lambda: other.delete_bucket(Bucket=bucket),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        gateway.client().head_object(Bucket=bucket, Key="intruder")


def test_bad_digest_stores_nothing(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"data", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert e.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="md5")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"data", ContentMD5="not-base64!")
    assert e.value.response["Error"]["Code"] == "InvalidDigest"


def test_short_body_is_incomplete(gateway, bucket):
    import socket

    host, port = "127.0.0.1", gateway.port
    from tests.support.signing import sign_headers

    headers = sign_headers(gateway.endpoint, "PUT", f"/{bucket}/short", b"x" * 100,
                           unsigned_payload=True)
    headers["Content-Length"] = "100"
    raw = f"PUT /{bucket}/short HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    ) + "\r\n"
    with socket.create_connection((host, port)) as sock:
        sock.sendall(raw.encode() + b"x" * 40)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            sock.recv(65536)
    assert signed_request(gateway.endpoint, "HEAD", f"/{bucket}/short").status_code == 404


def test_secrets_never_logged(gateway):
    import json

    from tests.support.gateway_process import run_cli

    admin = json.loads(run_cli(gateway.options, "admin-credentials").stdout)
    gateway.client().list_buckets()  # a request of our own: earlier tests may not have run
    log = gateway.log_path.read_text()
    assert "tester" in log  # the access log names the caller ...
    assert TEST_SECRET not in log  # ... but no secret is ever written
    assert admin["secret_key"] not in log


@pytest.mark.parametrize(
    "query,code",
    [("policy", "NoSuchBucketPolicy"), ("lifecycle", "NoSuchLifecycleConfiguration"),
     ("encryption", "ServerSideEncryptionConfigurationNotFoundError"),
     ("website", "NoSuchWebsiteConfiguration")],
)
def test_unconfigured_bucket_settings_are_not_found(gateway, bucket, query, code):
    resp = signed_request(gateway.endpoint, "GET", f"/{bucket}", query=query)
    assert resp.status_code == 404
    assert parse_error(resp)["Code"] == code
    assert signed_request(gateway.endpoint, "DELETE", f"/{bucket}", query=query).status_code == 204
