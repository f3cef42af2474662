"""Bucket configuration over real HTTP: tagging, ACLs, CORS (configuration, preflight, headers)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from tests.support.gateway_process import GatewayProcess, create_test_user
from tests.support.signing import sign_headers, signed_request

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def error_of(call) -> tuple[str, int, dict]:
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]


@pytest.fixture
def other(gateway):
    """A client of a second user, who owns nothing of the first user's."""
    uid = "other" + uuid.uuid4().hex[:6]
    key = "AKOTHER" + uuid.uuid4().hex[:13].upper()
    create_test_user(gateway.options, uid, access_key=key, secret="other-secret-" + uid)
    return gateway.client(access_key=key, secret="other-secret-" + uid)


# -- tagging -----------------------------------------------------------------------------


def test_tagging_round_trip(s3, bucket):
    code, status, err = error_of(lambda: s3.get_bucket_tagging(Bucket=bucket))
    assert (code, status) == ("NoSuchTagSet", 404)
    assert err["BucketName"] == bucket
    tags = [{"Key": "project", "Value": "atonix"}, {"Key": "cost center", "Value": ""}]
    resp = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags
    replaced = [{"Key": "é:ü", "Value": "a+b=c@d/e_f.g-h"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": replaced})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == replaced
    resp = s3.delete_bucket_tagging(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lambda: s3.get_bucket_tagging(Bucket=bucket))[0] == "NoSuchTagSet"
    s3.delete_bucket_tagging(Bucket=bucket)  # deleting nothing succeeds


def test_fifty_tags_are_the_limit(s3, bucket):
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": fifty})
    code, status, err = error_of(
        lambda: s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [*fifty, {"Key": "k50", "Value": "v"}]}
        )
    )
    assert (code, status) == ("BadRequest", 400)
    assert err["Message"] == "Bucket tag count cannot be greater than 50"
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50  # unchanged


@pytest.mark.parametrize(
    "tags, message",
    [
        ([{"Key": "k" * 129, "Value": "v"}], "The TagKey you have provided is invalid"),
        ([{"Key": "k", "Value": "v" * 257}], "The TagValue you have provided is invalid"),
        ([{"Key": "bad*key", "Value": "v"}], "The TagKey you have provided is invalid"),
        (
            [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}],
            "Cannot provide multiple Tags with the same key",
        ),
        ([{"Key": "aws:owner", "Value": "me"}], "System tags cannot be added/updated by requester"),
    ],
)
def test_invalid_tags(s3, bucket, tags, message):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "keep", "Value": "me"}]})
    put = lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})  # noqa: E731
    code, status, err = error_of(put)
    assert (code, status, err["Message"]) == ("InvalidTag", 400, message)
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "keep", "Value": "me"}]


def test_longest_tags_are_accepted(s3, bucket):
    tags = [{"Key": "k" * 128, "Value": "v" * 256}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tags


def test_malformed_tagging_body(gateway, bucket):
    for body in (b"", b"<Tagging>", b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>"):
        resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", body=body, query="tagging=")
        assert resp.status_code == 400, body
        assert b"<Code>MalformedXML</Code>" in resp.content
    empty_key = b"<Tagging><TagSet><Tag><Key></Key><Value>v</Value></Tag></TagSet></Tagging>"
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", body=empty_key, query="tagging=")
    assert resp.status_code == 400 and b"<Code>InvalidTag</Code>" in resp.content


def test_wrong_content_md5_stores_nothing(gateway, s3, bucket):
    body = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}", body=body, query="tagging=",
        headers={"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="},
    )
    assert resp.status_code == 400 and b"<Code>BadDigest</Code>" in resp.content
    assert error_of(lambda: s3.get_bucket_tagging(Bucket=bucket))[0] == "NoSuchTagSet"


def test_tagging_is_the_owners_business(s3, other, bucket):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert error_of(lambda: other.get_bucket_tagging(Bucket=bucket))[0] == "AccessDenied"
    put = lambda: other.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": []})  # noqa: E731
    assert error_of(put)[0] == "AccessDenied"
    assert error_of(lambda: other.delete_bucket_tagging(Bucket=bucket))[0] == "AccessDenied"
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "a", "Value": "b"}]
    missing = "no-such-bucket-" + uuid.uuid4().hex[:8]
    assert error_of(lambda: s3.get_bucket_tagging(Bucket=missing))[0] == "NoSuchBucket"


def test_configuration_goes_with_the_bucket(s3):
    name = "t-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    try:
        assert error_of(lambda: s3.get_bucket_tagging(Bucket=name))[0] == "NoSuchTagSet"
    finally:
        s3.delete_bucket(Bucket=name)


def test_configuration_is_visible_to_every_gateway(gateway, tmp_path):
    """A change made through one gateway is what the next request to another one sees."""
    second = GatewayProcess(gateway.options, tmp_path / "second.log").start()
    try:
        a, b = gateway.client(), second.client()
        name = "t-" + uuid.uuid4().hex[:16]
        a.create_bucket(Bucket=name)
        assert error_of(lambda: b.get_bucket_tagging(Bucket=name))[0] == "NoSuchTagSet"
        a.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "v", "Value": "1"}]})
        assert b.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "v", "Value": "1"}]
        b.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [RULE]})
        assert a.get_bucket_cors(Bucket=name)["CORSRules"] == [RULE]
        # Deleted and re-created behind the first gateway's back: no stale configuration.
        b.delete_bucket(Bucket=name)
        b.create_bucket(Bucket=name)
        assert error_of(lambda: a.get_bucket_tagging(Bucket=name))[0] == "NoSuchTagSet"
        a.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "v", "Value": "2"}]})
        assert b.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "v", "Value": "2"}]
        assert error_of(lambda: a.get_bucket_cors(Bucket=name))[0] == "NoSuchCORSConfiguration"
        a.delete_bucket(Bucket=name)
    finally:
        second.stop()


# -- ACLs -------------------------------------------------------------------------------


def check_owner_policy(content: bytes) -> None:
    root = ET.fromstring(content)
    assert root.tag == NS + "AccessControlPolicy"
    assert root.findtext(f"{NS}Owner/{NS}ID") == "tester"
    grants = root.findall(f"{NS}AccessControlList/{NS}Grant")
    assert len(grants) == 1
    grantee = grants[0].find(NS + "Grantee")
    assert grantee.get(XSI + "type") == "CanonicalUser"
    assert grantee.findtext(NS + "ID") == "tester"
    assert grants[0].findtext(NS + "Permission") == "FULL_CONTROL"


def test_get_acls(gateway, s3, bucket):
    resp = s3.get_bucket_acl(Bucket=bucket)
    assert resp["Owner"]["ID"] == "tester"
    assert resp["Grants"] == [
        {
            "Grantee": {"ID": "tester", "DisplayName": "Tester", "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        }
    ]
    raw = signed_request(gateway.endpoint, "GET", f"/{bucket}", query="acl=")
    check_owner_policy(raw.content)
    assert b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in raw.content
    assert b'xsi:type="CanonicalUser"' in raw.content
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x")
    assert s3.get_object_acl(Bucket=bucket, Key="obj")["Grants"] == resp["Grants"]
    raw = signed_request(gateway.endpoint, "GET", f"/{bucket}/obj", query="acl=")
    check_owner_policy(raw.content)
    assert error_of(lambda: s3.get_object_acl(Bucket=bucket, Key="missing"))[0] == "NoSuchKey"


def test_private_acl_is_accepted(s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x", ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="bucket-owner-full-control")
    policy = s3.get_bucket_acl(Bucket=bucket)
    body = {"Owner": policy["Owner"], "Grants": policy["Grants"]}
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=body)
    s3.put_object_acl(Bucket=bucket, Key="obj", AccessControlPolicy=body)
    name = "t-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name, ACL="private")
    s3.delete_bucket(Bucket=name)


def test_other_canned_acls_are_not_implemented(s3, bucket):
    """Canned ACLs and any grants work (test_s3_acl_grants.py); these two canned ones are 501."""
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x")
    owner = s3.get_bucket_acl(Bucket=bucket)
    calls = [
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL="log-delivery-write"),
        lambda: s3.put_object_acl(Bucket=bucket, Key="obj", ACL="aws-exec-read"),
    ]
    for call in calls:
        assert error_of(call)[:2] == ("NotImplemented", 501)
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == owner["Grants"]  # nothing changed
    name = "t-" + uuid.uuid4().hex[:16]
    assert error_of(lambda: s3.create_bucket(Bucket=name, ACL="log-delivery-write"))[0] == (
        "NotImplemented"
    )
    assert error_of(lambda: s3.head_bucket(Bucket=name))[1] == 404  # nothing was created


def test_bad_acl_requests(gateway, s3, bucket):
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", query="acl=")
    assert resp.status_code == 400 and b"<Code>MissingSecurityHeader</Code>" in resp.content
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", query="acl=", body=b"not xml")
    assert resp.status_code == 400 and b"<Code>MalformedACLError</Code>" in resp.content
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}", query="acl=", headers={"x-amz-acl": "mine"}
    )
    assert resp.status_code == 400 and b"<ArgumentName>x-amz-acl</ArgumentName>" in resp.content
    body = signed_request(gateway.endpoint, "GET", f"/{bucket}", query="acl=").content
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}", query="acl=", body=body,
        headers={"x-amz-acl": "private"},
    )
    assert resp.status_code == 400 and b"<Code>UnexpectedContent</Code>" in resp.content


def test_acls_are_the_owners_business(other, s3, bucket):
    assert error_of(lambda: other.get_bucket_acl(Bucket=bucket))[0] == "AccessDenied"
    assert error_of(lambda: other.put_bucket_acl(Bucket=bucket, ACL="private"))[0] == "AccessDenied"


# -- CORS ---------------------------------------------------------------------------------

RULE = {
    "ID": "site",
    "AllowedOrigins": ["https://app.example.com", "http://*.example.com"],
    "AllowedMethods": ["GET", "PUT"],
    "AllowedHeaders": ["Content-Type", "x-amz-*"],
    "ExposeHeaders": ["ETag", "x-amz-request-id"],
    "MaxAgeSeconds": 3000,
}
PUBLIC_RULE = {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]}


def test_cors_configuration_round_trip(s3, bucket):
    code, status, err = error_of(lambda: s3.get_bucket_cors(Bucket=bucket))
    assert (code, status, err["BucketName"]) == ("NoSuchCORSConfiguration", 404, bucket)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [RULE, PUBLIC_RULE]})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == [RULE, PUBLIC_RULE]
    resp = s3.delete_bucket_cors(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lambda: s3.get_bucket_cors(Bucket=bucket))[0] == "NoSuchCORSConfiguration"


@pytest.mark.parametrize(
    "rules, code, message",
    [
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest",
         "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
        ([{"AllowedOrigins": ["http://*.*.com"], "AllowedMethods": ["GET"]}], "InvalidRequest",
         'AllowedOrigin "http://*.*.com" can not have more than one wildcard.'),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["*"]}],
         "InvalidRequest",
         'ExposeHeader "*" contains wildcard. '
         "We currently do not support wildcard for ExposeHeader."),
        ([], "MalformedXML", None),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101, "MalformedXML", None),
    ],
)
def test_invalid_cors_configurations(s3, bucket, rules, code, message):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [PUBLIC_RULE]})
    got, status, err = error_of(
        lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    )
    assert (got, status) == (code, 400)
    if message:
        assert err["Message"] == message
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == [PUBLIC_RULE]  # unchanged


def test_cors_rule_without_origin_is_malformed(gateway, bucket):
    body = (
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
        b"</CORSConfiguration>"
    )
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", body=body, query="cors=")
    assert resp.status_code == 400 and b"<Code>MalformedXML</Code>" in resp.content


def preflight(gateway, path, origin=None, method=None, headers=None):
    sent = {}
    if origin is not None:
        sent["Origin"] = origin
    if method is not None:
        sent["Access-Control-Request-Method"] = method
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return requests.options(gateway.endpoint + path, headers=sent, timeout=30)


def test_preflight_allowed(gateway, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [RULE, PUBLIC_RULE]})
    resp = preflight(gateway, f"/{bucket}/some/key", "http://www.example.com", "PUT",
                     "Content-Type, X-Amz-Date")
    assert resp.status_code == 200
    assert resp.content == b""
    h = resp.headers
    assert h["Access-Control-Allow-Origin"] == "http://www.example.com"
    assert h["Access-Control-Allow-Methods"] == "GET, PUT"
    assert h["Access-Control-Allow-Headers"] == "content-type, x-amz-date"
    assert h["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert h["Access-Control-Max-Age"] == "3000"
    assert h["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in h["Vary"]
    assert h["x-amz-request-id"] and h["Server"]
    # An origin only the literal * allows.
    resp = preflight(gateway, f"/{bucket}", "https://elsewhere.org", "HEAD")
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert "Access-Control-Allow-Credentials" not in resp.headers


def forbidden(resp) -> dict[str, str]:
    assert resp.status_code == 403
    root = ET.fromstring(resp.content)
    return {child.tag: child.text or "" for child in root}


def test_preflight_refused(gateway, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [RULE]})
    for origin, method, headers in [
        ("https://evil.org", "GET", None),  # origin
        ("https://app.example.com", "DELETE", None),  # method
        ("https://app.example.com", "PUT", "authorization"),  # header
        ("HTTPS://app.example.com", "GET", None),  # origins compare case-sensitively
        ("http://example.com", "GET", None),  # the wildcard needs its dot
    ]:
        err = forbidden(preflight(gateway, f"/{bucket}/k", origin, method, headers))
        assert err["Code"] == "AccessForbidden"
        assert err["Message"].startswith("CORSResponse: This CORS request is not allowed.")
        assert err["Method"] == method and err["ResourceType"] == "OBJECT"


def test_preflight_without_configuration_or_bucket(gateway, bucket):
    err = forbidden(preflight(gateway, f"/{bucket}", "https://a.example", "GET"))
    assert err["Code"] == "AccessForbidden"
    assert err["Message"] == "CORSResponse: CORS is not enabled for this bucket."
    err = forbidden(preflight(gateway, "/no-such-bucket-cors/k", "https://a.example", "GET"))
    assert err["Message"] == "CORSResponse: Bucket not found"
    resp = preflight(gateway, f"/{bucket}", None, "GET")
    assert resp.status_code == 400
    assert b"<Code>BadRequest</Code>" in resp.content
    assert b"Insufficient information. Origin request header needed." in resp.content


def test_preflight_needs_a_valid_method(gateway, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [PUBLIC_RULE]})
    for method in (None, "PATCH"):
        resp = preflight(gateway, f"/{bucket}", "https://a.example", method)
        assert resp.status_code == 400 and b"<Code>BadRequest</Code>" in resp.content


def test_actual_requests_get_cors_headers(gateway, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [RULE]})
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = f"{gateway.endpoint}/{bucket}/k"
    headers = signed_headers(gateway, "GET", f"/{bucket}/k", origin="https://app.example.com")
    resp = requests.get(url, headers=headers, timeout=30)
    assert resp.status_code == 200 and resp.content == b"data"
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert resp.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    # A method the rule does not allow, or an origin it does not name: no CORS headers.
    headers = signed_headers(gateway, "DELETE", f"/{bucket}/k", origin="https://app.example.com")
    resp = requests.delete(url, headers=headers, timeout=30)
    assert resp.status_code == 204 and "Access-Control-Allow-Origin" not in resp.headers
    headers = signed_headers(gateway, "HEAD", f"/{bucket}/k", origin="https://evil.org")
    resp = requests.head(url, headers=headers, timeout=30)
    assert "Access-Control-Allow-Origin" not in resp.headers
    # Errors carry them too, so a browser script can read the error.
    headers = signed_headers(gateway, "GET", f"/{bucket}/k", origin="http://x.example.com")
    resp = requests.get(url, headers=headers, timeout=30)
    assert resp.status_code == 404
    assert resp.headers["Access-Control-Allow-Origin"] == "http://x.example.com"


def test_no_cors_headers_without_configuration(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    headers = signed_headers(gateway, "GET", f"/{bucket}/k", origin="https://a.example")
    resp = requests.get(f"{gateway.endpoint}/{bucket}/k", headers=headers, timeout=30)
    assert resp.status_code == 200 and "Access-Control-Allow-Origin" not in resp.headers


def signed_headers(gateway, method, path, origin):
    return sign_headers(gateway.endpoint, method, path, headers={"Origin": origin})
