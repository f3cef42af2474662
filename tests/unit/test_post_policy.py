"""The pure POST-policy core: form signature, policy parsing, conditions, expiration."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from s3api import post_policy
from s3api.errors import S3Error

# AWS's documented SigV4 POST example (sigv4-post-example), with its stated signature.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_POLICY = (
    "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7"
    "ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91"
    "c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3Qi"
    "OiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwi"
    "fSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRh"
    "LXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVT"
    "MjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNy"
    "ZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9"
    "LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAi"
    "MjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
)
AWS_SIGNATURE = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
AWS_FIELDS = {
    "key": "user/user1/MyPicture.jpg",
    "acl": "public-read",
    "success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
    "content-type": "image/jpeg",
    "x-amz-meta-uuid": "14365123651274",
    "x-amz-server-side-encryption": "AES256",
    "x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
    "x-amz-algorithm": "AWS4-HMAC-SHA256",
    "x-amz-date": "20151229T000000Z",
    "x-amz-meta-tag": "",
    "policy": AWS_POLICY,
    "x-amz-signature": AWS_SIGNATURE,
}


def lookup(access_key: str) -> str | None:
    return AWS_SECRET if access_key == "AKIAIOSFODNN7EXAMPLE" else None


def code_of(call) -> tuple[str, str]:
    with pytest.raises(S3Error) as e:
        call()
    return e.value.code.name, e.value.message


def encoded(doc) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def test_aws_example_signature_verifies():
    assert post_policy.verify_signature(AWS_FIELDS, "us-east-1", lookup) == "AKIAIOSFODNN7EXAMPLE"


def test_aws_example_policy_holds_until_it_expires():
    policy = post_policy.parse_policy(AWS_POLICY)
    assert policy.expiration == datetime(2015, 12, 30, 12, tzinfo=UTC)
    fields, bucket = dict(AWS_FIELDS), "sigv4examplebucket"
    before = datetime(2015, 12, 29, tzinfo=UTC)
    post_policy.check_policy(policy, fields, bucket, before)
    code, message = code_of(
        lambda: post_policy.check_policy(policy, fields, bucket, datetime.now(UTC))
    )
    assert (code, message) == ("AccessDenied", "Invalid according to Policy: Policy expired.")
    _, message = code_of(lambda: post_policy.check_policy(policy, fields, "other", before))
    assert message == (
        "Invalid according to Policy: Policy Condition failed: "
        '["eq", "$bucket", "sigv4examplebucket"]'
    )


@pytest.mark.parametrize(
    "change, code",
    [
        ({"x-amz-signature": "0" * 64}, "SignatureDoesNotMatch"),
        ({"policy": AWS_POLICY[:-4]}, "SignatureDoesNotMatch"),
        ({"x-amz-credential": "NOPE/20151229/us-east-1/s3/aws4_request"}, "InvalidAccessKeyId"),
        ({"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/eu-west-1/s3/aws4_request"},
         "InvalidArgument"),
        ({"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/bad"}, "InvalidArgument"),
        ({"x-amz-algorithm": "AWS4-HMAC-SHA1"}, "InvalidArgument"),
        ({"x-amz-date": "yesterday"}, "InvalidArgument"),
        ({"awsaccesskeyid": "AKIAIOSFODNN7EXAMPLE"}, "InvalidArgument"),  # no "signature"
    ],
)
def test_signature_refusals(change, code):
    fields = {**AWS_FIELDS, **change}
    assert code_of(lambda: post_policy.verify_signature(fields, "us-east-1", lookup))[0] == code


def test_v2_form_signature():
    """The older form: base64 HMAC-SHA1 of the policy text under the secret key."""
    secret = lookup("AKIAIOSFODNN7EXAMPLE")
    policy = AWS_FIELDS["policy"]
    good = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest())
    fields = {"awsaccesskeyid": "AKIAIOSFODNN7EXAMPLE", "policy": policy,
              "signature": good.decode()}
    assert post_policy.verify_signature(fields, "us-east-1", lookup) == "AKIAIOSFODNN7EXAMPLE"
    bad = {**fields, "signature": good.decode()[::-1]}
    assert code_of(lambda: post_policy.verify_signature(bad, "us-east-1", lookup))[0] == (
        "SignatureDoesNotMatch"
    )
    no_key = {k: v for k, v in fields.items() if k != "awsaccesskeyid"}
    with pytest.raises(S3Error) as e:
        post_policy.access_key_of(no_key, "us-east-1")
    assert e.value.details["ArgumentName"] == "AWSAccessKeyId"


def test_missing_signature_field_is_named():
    fields = {k: v for k, v in AWS_FIELDS.items() if k != "x-amz-signature"}
    with pytest.raises(S3Error) as e:
        post_policy.verify_signature(fields, "us-east-1", lookup)
    assert e.value.code.name == "InvalidArgument"
    assert e.value.details["ArgumentName"] == "X-Amz-Signature"
    assert e.value.message.startswith("Bucket POST must contain a field named 'X-Amz-Signature'.")


@pytest.mark.parametrize(
    "policy, message",
    [
        ("***", "Invalid Policy: invalid Base64 encoding."),
        (base64.b64encode(b"[1").decode(), "Invalid Policy: Invalid JSON."),
        (encoded([]), "Invalid Policy: Invalid JSON."),
        (encoded({"conditions": []}), "Invalid Policy: Policy missing expiration."),
        (encoded({"expiration": "2030-01-01T00:00:00Z"}),
         "Invalid Policy: Policy missing conditions."),
        (encoded({"expiration": "2030-01-01T00:00:00Z", "conditions": {}}),
         "Invalid Policy: Invalid 'conditions' value: must be a List."),
        (encoded({"expiration": "2030-01-01 00:00:00", "conditions": []}),
         "Invalid Policy: Invalid 'expiration' value: '2030-01-01 00:00:00'"),
        (encoded({"EXPIRATION": "2030-01-01T00:00:00Z", "conditions": []}),
         "Invalid Policy: Unexpected: 'expiration'"),
        (encoded({"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": "1", "b": "2"}]}),
         "Invalid Policy: Invalid Simple-Condition: "
         "Simple-Conditions must have exactly one property specified."),
        (encoded({"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": 1}]}),
         "Invalid Policy: Invalid Simple-Condition: value must be a string."),
        (encoded({"expiration": "2030-01-01T00:00:00Z", "conditions": [["in", "$a", "b"]]}),
         "Invalid Policy: Invalid Condition: unknown operation 'in'."),
        (encoded({"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "$a"]]}),
         "Invalid Policy: Invalid eq: wrong number of arguments."),
        (encoded({"expiration": "2030-01-01T00:00:00Z",
                  "conditions": [["content-length-range", 0]]}),
         "Invalid Policy: Invalid content-length-range: wrong number of arguments."),
        (encoded({"expiration": "2030-01-01T00:00:00Z",
                  "conditions": [["content-length-range", 0, 1.5]]}),
         "Invalid Policy: Invalid JSON."),
        (encoded({"expiration": "2030-01-01T00:00:00Z", "conditions": ["x"]}),
         "Invalid Policy: Invalid condition test: must be a List or Object."),
    ],
)
def test_invalid_policies(policy, message):
    assert code_of(lambda: post_policy.parse_policy(policy)) == ("InvalidPolicyDocument", message)


NOW = datetime(2030, 1, 1, tzinfo=UTC)


def check(conditions, fields, bucket="b", name_bucket=True):
    if name_bucket:
        conditions = [{"bucket": bucket}, *conditions]
    policy = post_policy.parse_policy(
        encoded({"expiration": "2031-01-01T00:00:00.000Z", "conditions": conditions})
    )
    post_policy.check_policy(policy, fields, bucket, NOW)
    return policy


def test_conditions_hold():
    check(
        [{"bucket": "b"}, ["StArTs-WiTh", "$KeY", "user/"], ["eq", "$acl", "private"],
         ["starts-with", "$Content-Type", "image/"], ["content-length-range", "1", "10"]],
        {"key": "user/x", "acl": "private", "content-type": "image/png,image/gif",
         "x-ignore-me": "1", "policy": "p", "x-amz-signature": "s"},
    )


@pytest.mark.parametrize(
    "conditions, fields, failed",
    [
        ([["eq", "$key", "a"]], {"key": "A"}, '["eq", "$key", "a"]'),
        ([["starts-with", "$key", "user/"]], {"key": "other/x"},
         '["starts-with", "$key", "user/"]'),
        ([["starts-with", "$x-amz-meta-a", ""]], {}, '["starts-with", "$x-amz-meta-a", ""]'),
        ([["eq", "key", "k"]], {"key": "k"}, '["eq", "key", "k"]'),
        ([["starts-with", "$Content-Type", "image/"]], {"content-type": "image/png,text/plain"},
         '["starts-with", "$Content-Type", "image/"]'),
        ([["content-length-range", "test", "10"]], {}, '["content-length-range", "test", "10"]'),
    ],
)
def test_condition_failures(conditions, fields, failed):
    code, message = code_of(lambda: check(conditions, fields))
    assert (code, message) == (
        "AccessDenied", "Invalid according to Policy: Policy Condition failed: " + failed
    )


def test_extra_fields():
    _, message = code_of(lambda: check([["eq", "$key", "k"]], {"key": "k", "x-amz-meta-a": "1"}))
    assert message == "Invalid according to Policy: Extra input fields: x-amz-meta-a"


def test_bucket_must_be_named_by_a_condition():
    _, message = code_of(lambda: check([["eq", "$key", "k"]], {"key": "k"}, name_bucket=False))
    assert message == "Invalid according to Policy: Extra input fields: bucket"


def test_length_range_is_the_tightest():
    policy = check(
        [["content-length-range", 0, 100], ["content-length-range", 10, 1000]], {}
    )
    assert policy.length_range == (10, 100)
    assert check([], {}).length_range is None


def test_filename_expansion():
    assert post_policy.expand_filename("u/${filename}", "C:\\dir\\a b.jpg") == "u/a b.jpg"
    assert post_policy.expand_filename("u/${filename}", "x/y/z.txt") == "u/z.txt"
    assert post_policy.expand_filename("u/${filename}", None) == "u/${filename}"
    assert post_policy.expand_filename("plain", "f") == "plain"
