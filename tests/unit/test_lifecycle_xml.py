"""Lifecycle configuration XML (pure): what boto3 sends reads back the same, and
each malformed document gets AWS's error."""

from __future__ import annotations

import pytest

from engine import decode_rules, encode_rules
from s3api.errors import S3Error
from s3api.lifecycle import parse_configuration, render_configuration

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def doc(*rules: str) -> bytes:
    return f"<LifecycleConfiguration {NS}>{''.join(rules)}</LifecycleConfiguration>".encode()


FULL = (
    "<Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix>"
    "<Tag><Key>team</Key><Value>web</Value></Tag><ObjectSizeGreaterThan>1024</ObjectSizeGreaterThan>"
    "</And></Filter><Status>Enabled</Status>"
    "<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>"
    "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
    "<StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>"
    "<NoncurrentVersionTransition><NoncurrentDays>60</NoncurrentDays>"
    "<StorageClass>GLACIER</StorageClass><NewerNoncurrentVersions>3</NewerNoncurrentVersions>"
    "</NoncurrentVersionTransition>"
    "<Expiration><Days>365</Days></Expiration>"
    "<NoncurrentVersionExpiration><NoncurrentDays>90</NoncurrentDays>"
    "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation>"
    "</AbortIncompleteMultipartUpload></Rule>"
)
LEGACY = "<Rule><ID>old</ID><Prefix>tmp/</Prefix><Status>Disabled</Status>" \
         "<Expiration><Days>1</Days></Expiration></Rule>"
SINGLE = "<Rule><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status>" \
         "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"


def test_a_full_document_survives_storage_and_rendering():
    rules = parse_configuration(doc(FULL, LEGACY, SINGLE))
    full, legacy, single = rules
    assert (full.rule_id, full.prefix, full.tags, full.size_greater_than) == (
        "logs", "logs/", {"team": "web"}, 1024)
    assert full.transitions == ((30, "STANDARD_IA"),)
    assert full.noncurrent_transitions == ((30, "STANDARD_IA"), (60, "GLACIER", 3))
    assert (full.expiration_days, full.noncurrent_expiration_days) == (365, 90)
    assert (full.newer_noncurrent_versions, full.abort_incomplete_days) == (2, 7)
    assert (legacy.enabled, legacy.filter_form, legacy.prefix) == (False, "prefix", "tmp/")
    assert single.expired_object_delete_marker and single.prefix == "a/"
    stored = decode_rules(encode_rules(rules))
    assert stored == rules
    assert parse_configuration(render_configuration(stored)) == rules


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "MalformedXML"),
        (doc(), "MalformedXML"),
        (b"<Other/>", "MalformedXML"),
        (doc("<Rule><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"),
         "MalformedXML"),
        (doc("<Rule><Prefix/><Filter/><Status>Enabled</Status>"
             "<Expiration><Days>1</Days></Expiration></Rule>"), "MalformedXML"),
        (doc("<Rule><Filter/><Status>Enabled</Status></Rule>"), "InvalidRequest"),
        (doc("<Rule><ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days>"
             "</Expiration></Rule>" * 2), "InvalidArgument"),
        (doc("<Rule><Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>"
             "</Rule>"), "InvalidArgument"),
        (doc("<Rule><Filter/><Status>Enabled</Status><Transition><Days>10</Days>"
             "<StorageClass>STANDARD_IA</StorageClass></Transition></Rule>"), "InvalidArgument"),
        (doc("<Rule><Filter/><Status>Enabled</Status><Transition><Days>40</Days>"
             "<StorageClass>COLDEST</StorageClass></Transition></Rule>"), "MalformedXML"),
        (doc("<Rule><Filter/><Status>Enabled</Status><Transition><Date>2030-01-01T00:00:00Z"
             "</Date><StorageClass>GLACIER</StorageClass></Transition></Rule>"), "NotImplemented"),
        (doc("<Rule><Filter/><Status>Enabled</Status><Expiration><Days>3</Days>"
             "<Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>"), "MalformedXML"),
        (doc("<Rule><Filter/><Status>Enabled</Status><Expiration>"
             "<Date>2030-01-01T10:00:00Z</Date></Expiration></Rule>"), "InvalidArgument"),
        (doc("<Rule><ID>" + "x" * 256 + "</ID><Filter/><Status>Enabled</Status>"
             "<Expiration><Days>3</Days></Expiration></Rule>"), "InvalidArgument"),
    ],
)
def test_malformed_documents_get_aws_errors(body, code):
    with pytest.raises(S3Error) as e:
        parse_configuration(body)
    assert e.value.code.name == code
