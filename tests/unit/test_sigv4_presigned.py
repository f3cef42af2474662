"""SigV4 presigned URLs, a property test over botocore signing, and real SDK requests."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.utils import percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3api import sigv4_canonical as canon
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import (
    HttpRequestView,
    PayloadMode,
)
from tests.unit.sigv4_support import (
    AK,
    NOW,
    capture_client,
    raises,
    replace,
    s3_path,
    server_view,
    signed_view,
    verify,
)

# -- presigned URLs --------------------------------------------------------------------------


def test_presigned_excludes_signature_from_canonical_query():
    view = signed_view("GET", "/bucket/key", "response-content-type=text%2Fplain", presign=True)
    result = verify(view)
    assert result.presigned and result.payload_mode is PayloadMode.UNSIGNED
    assert result.seed_signature in view.raw_query


def test_presigned_put_with_signed_headers():
    view = signed_view("PUT", "/bucket/key", headers={"x-amz-acl": "private"}, presign=True)
    assert verify(view).signed_headers == ("host", "x-amz-acl")


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (NOW + timedelta(seconds=3601), "Request has expired"),
        (NOW - timedelta(minutes=20), "Request is not valid yet"),
    ],
)
def test_presigned_time_window(now, message):
    view = signed_view(presign=True, expires=3600)
    assert verify(view, NOW + timedelta(seconds=3600)) is not None
    assert raises(S3ErrorCode.AccessDenied, view, now).message == message


def set_param(view: HttpRequestView, name: str, value: str | None) -> HttpRequestView:
    parts = [p for p in view.raw_query.split("&") if not p.startswith(name + "=")]
    if value is not None:
        parts.append(f"{name}={value}")
    return replace(view, raw_query="&".join(parts))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Amz-Expires", "soon", "X-Amz-Expires should be a number"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA512", "X-Amz-Algorithm only supports"),
        ("X-Amz-Date", "2013-05-24", "X-Amz-Date must be in the ISO8601 Long Format"),
        ("X-Amz-Credential", "AKID%2F20130524", "Error parsing the X-Amz-Credential parameter"),
        ("X-Amz-Signature", None, "Query-string authentication version 4 requires"),
        ("X-Amz-SignedHeaders", None, "Query-string authentication version 4 requires"),
        ("X-Amz-Expires", None, "Query-string authentication version 4 requires"),
    ],
)
def test_presigned_parameter_errors(name, value, message):
    view = set_param(signed_view(presign=True), name, value)
    error = raises(S3ErrorCode.AuthorizationQueryParametersError, view)
    assert error.message.startswith(message), error.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "X-Amz-Expires must be greater than 0"),
        ("-5", "X-Amz-Expires must be non-negative"),
        ("604801", "X-Amz-Expires must be less than a week"),
    ],
)
def test_presigned_lifetime_out_of_range_is_denied(value, message):
    """403, as Ceph RGW answers (AWS says 400 AuthorizationQueryParametersError)."""
    view = set_param(signed_view(presign=True), "X-Amz-Expires", value)
    assert raises(S3ErrorCode.AccessDenied, view).message.startswith(message)


def test_presigned_maximum_expiry_is_accepted():
    view = signed_view(presign=True, expires=604800)
    assert verify(view, NOW + timedelta(days=6)) is not None


def test_presigned_unknown_key():
    view = signed_view(presign=True)
    view = set_param(view, "X-Amz-Credential", "NOPE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request")
    raises(S3ErrorCode.InvalidAccessKeyId, view)


# -- property: whatever botocore signs verifies -------------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=60,
)
_header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40
).filter(str.strip)
_header_name = st.from_regex(r"x-amz-meta-[a-z0-9][a-z0-9-]{0,15}", fullmatch=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=_text,
    # Names of SigV4's own query parameters are the signer's, not the caller's.
    params=st.dictionaries(
        _text.filter(lambda k: not k.lower().startswith("x-amz-")), st.text(max_size=20),
        max_size=4,
    ),
    headers=st.dictionaries(_header_name, _header_value, max_size=3),
    presign=st.booleans(),
)
def test_property_botocore_signed_requests_verify(key, params, headers, presign):
    query = percent_encode_sequence(params) if params else ""
    body = b"" if presign else key.encode()
    view = signed_view("PUT", s3_path("bucket", key), query, headers, body, presign=presign)
    # botocore's wire encoding is already canonical: S3 neither re-encodes nor normalises it.
    assert canon.canonical_uri(view.raw_path) == view.raw_path
    result = verify(view)
    assert result is not None and result.access_key == AK
    if not presign:
        assert result.declared_sha256 == canon.sha256_hex(key.encode())
    tampered = replace(view, raw_path=view.raw_path + "x")
    with pytest.raises(S3Error) as info:
        verify(tampered)
    assert info.value.code is S3ErrorCode.SignatureDoesNotMatch


# -- real botocore clients (the requests an SDK actually sends) --------------------------------


@pytest.mark.parametrize("key", ["photos/2024/été.jpg", "a b+c~d", "%2F", "k" * 1024])
def test_real_client_requests_verify(key):
    client, sent = capture_client()
    client.put_object(Bucket="bucket", Key=key, Body=b"data", Metadata={"m": "v"})
    client.list_objects_v2(Bucket="bucket", Prefix=key, Delimiter="/")
    client.head_object(Bucket="bucket", Key=key)
    client.delete_objects(Bucket="bucket", Delete={"Objects": [{"Key": key}]})
    now = datetime.now(UTC)
    for request in sent:
        view, body = server_view(request)
        result = verify(view, now)
        if result.payload_mode is PayloadMode.SIGNED_HEX:
            assert result.declared_sha256 == canon.sha256_hex(body)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": key})
    parts = urlsplit(url)
    view = HttpRequestView("GET", parts.path, parts.query, {"Host": parts.netloc})
    assert verify(view, now).presigned


def test_real_client_streaming_put_is_streaming_unsigned_trailer():
    client, sent = capture_client("https://gateway.test")
    client.put_object(Bucket="bucket", Key="k", Body=io.BytesIO(b"x" * 100))
    view, _ = server_view(sent[-1])
    result = verify(view, datetime.now(UTC))
    assert result.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert result.decoded_content_length == 100


def test_view_from_request_target_and_multidict_headers():
    from multidict import CIMultiDict, CIMultiDictProxy

    view = signed_view("GET", "/bucket/key", "list-type=2", {"X-Amz-Meta-Multi": "a,b"})
    pairs = [(k, v) for k, v in view.headers.items() if k != "x-amz-meta-multi"]
    pairs += [("X-Amz-Meta-Multi", "a"), ("x-amz-meta-multi", "b")]
    headers = CIMultiDictProxy(CIMultiDict(pairs))
    target = f"{view.raw_path}?{view.raw_query}"
    from_target = HttpRequestView.from_target("GET", target, headers)
    assert (from_target.raw_path, from_target.raw_query) == ("/bucket/key", "list-type=2")
    assert verify(from_target) is not None
