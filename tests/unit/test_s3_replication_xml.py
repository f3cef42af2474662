"""Replication configuration XML (pure): what boto3 sends reads back the same, every
form of filter keeps its shape, and each bad document gets AWS's error."""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest
from botocore.serialize import create_serializer

from engine import ReplicationConfig, ReplicationRule
from s3api.errors import S3Error
from s3api.replication import parse_configuration, render_configuration

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
ROLE = "<Role>arn:aws:iam::123456789012:role/replicator</Role>"
GOLDEN = Path(__file__).parent.parent / "golden"
DEST = "<Destination><Bucket>arn:aws:s3:::dest</Bucket></Destination>"
DMR_OFF = "<DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication>"
DMR_ON = "<DeleteMarkerReplication><Status>Enabled</Status></DeleteMarkerReplication>"


def doc(*rules: str, role: str = ROLE) -> bytes:
    return f"<ReplicationConfiguration {NS}>{role}{''.join(rules)}</ReplicationConfiguration>" \
        .encode()


def v2(inner: str = "<Filter/>", priority: str = "<Priority>1</Priority>",
       dmr: str = DMR_OFF, dest: str = DEST, rule_id: str = "", extra: str = "") -> str:
    return f"<Rule>{rule_id}{priority}{inner}<Status>Enabled</Status>{extra}{dest}{dmr}</Rule>"


def v1(prefix: str = "<Prefix>a/</Prefix>", extra: str = "") -> str:
    return f"<Rule>{prefix}<Status>Enabled</Status>{extra}{DEST}</Rule>"


TAG = "<Tag><Key>team</Key><Value>web</Value></Tag>"
FORMS = (
    v2("<Filter><Prefix>logs/</Prefix></Filter>", rule_id="<ID>prefix</ID>", dmr=DMR_ON,
       dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket>"
            "<StorageClass>STANDARD_IA</StorageClass></Destination>"),
    v2(f"<Filter>{TAG}</Filter>", priority="<Priority>2</Priority>", rule_id="<ID>tag</ID>"),
    v2(f"<Filter><And><Prefix>a/</Prefix>{TAG}<Tag><Key>k</Key><Value></Value></Tag></And>"
       "</Filter>", priority="<Priority>3</Priority>", rule_id="<ID>and</ID>"),
    v2(f"<Filter><And>{TAG}<Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>",
       priority="<Priority>4</Priority>", rule_id="<ID>tags</ID>"),
    v2(priority="<Priority>5</Priority>", rule_id="<ID>empty</ID>"),
)


def test_every_filter_form_survives_storage_and_rendering():
    config = parse_configuration(doc(*FORMS))
    prefix, tag, both, tags, everything = config.rules
    assert config.role == "arn:aws:iam::123456789012:role/replicator"
    assert (prefix.rule_id, prefix.priority, prefix.prefix, prefix.filter_form) == (
        "prefix", 1, "logs/", "filter")
    assert (prefix.delete_markers, prefix.storage_class, prefix.destination) == (
        True, "STANDARD_IA", "arn:aws:s3:::dest")
    assert (tag.tags, tag.filter_form, tag.delete_markers) == ({"team": "web"}, "tag", False)
    assert (both.prefix, both.tags, both.filter_form) == ("a/", {"team": "web", "k": ""}, "and")
    assert (tags.prefix, tags.filter_form) == ("", "and")
    assert (everything.prefix, everything.tags, everything.filter_form) == ("", {}, "empty")
    assert all(r.enabled for r in config.rules)
    stored = ReplicationConfig.decode(config.encode())
    assert stored == config
    assert parse_configuration(render_configuration(stored)) == config


def test_v1_documents_keep_their_shape():
    config = parse_configuration(doc(v1(), v1("<Prefix></Prefix>").replace(
        "Enabled", "Disabled")))
    first, second = config.rules
    assert (first.prefix, first.filter_form, first.delete_markers) == ("a/", "prefix", True)
    assert (second.prefix, second.enabled) == ("", False)
    rendered = render_configuration(config)
    assert b"<Filter>" not in rendered and b"<Priority>" not in rendered
    assert b"<DeleteMarkerReplication>" not in rendered
    assert parse_configuration(rendered) == config


def test_missing_ids_are_made_up_stably_and_kept():
    body = doc(v2(), v2(priority="<Priority>2</Priority>"))
    config = parse_configuration(body)
    ids = [r.rule_id for r in config.rules]
    assert len(set(ids)) == 2 and all(len(i) == 48 for i in ids)  # base64 of a UUID, as AWS
    assert [r.rule_id for r in parse_configuration(body).rules] == ids
    assert parse_configuration(render_configuration(config)) == config


def test_disabled_features_are_accepted_as_no_ops():
    extra = ("<SourceSelectionCriteria><SseKmsEncryptedObjects><Status>Disabled</Status>"
             "</SseKmsEncryptedObjects><ReplicaModifications><Status>Disabled</Status>"
             "</ReplicaModifications></SourceSelectionCriteria>"
             "<ExistingObjectReplication><Status>Disabled</Status></ExistingObjectReplication>")
    dest = ("<Destination><Bucket>arn:aws:s3:::dest</Bucket>"
            "<ReplicationTime><Status>Disabled</Status><Time><Minutes>15</Minutes></Time>"
            "</ReplicationTime><Metrics><Status>Disabled</Status></Metrics></Destination>")
    (rule,) = parse_configuration(doc(v2(extra=extra, dest=dest))).rules
    assert rule.destination == "arn:aws:s3:::dest" and rule.storage_class is None


def test_what_boto3_sends_is_understood():
    params = {
        "Bucket": "src",
        "ReplicationConfiguration": {
            "Role": "arn:aws:iam::123456789012:role/replicator",
            "Rules": [{
                "ID": "r1", "Priority": 7, "Status": "Enabled",
                "Filter": {"And": {"Prefix": "p/", "Tags": [{"Key": "a", "Value": "b"}]}},
                "DeleteMarkerReplication": {"Status": "Disabled"},
                "Destination": {"Bucket": "arn:aws:s3:::dest", "StorageClass": "GLACIER"},
            }],
        },
    }
    model = botocore.session.get_session().get_service_model("s3")
    request = create_serializer("rest-xml").serialize_to_request(
        params, model.operation_model("PutBucketReplication"))
    (rule,) = parse_configuration(request["body"]).rules
    assert (rule.rule_id, rule.priority, rule.prefix, rule.tags, rule.storage_class) == (
        "r1", 7, "p/", {"a": "b"}, "GLACIER")


def test_rendering_is_valid_whatever_the_form_says():
    odd = ReplicationRule("arn:aws:s3:::dest", "x", 1, prefix="p/", tags={"a": "b"},
                          filter_form="filter")
    rendered = render_configuration(ReplicationConfig((odd,), "arn:aws:iam::1:role/r"))
    assert b"<Filter><And><Prefix>p/</Prefix><Tag>" in rendered
    assert parse_configuration(rendered).rules[0].tags == {"a": "b"}


def test_get_bucket_replication_golden():
    config = parse_configuration(doc(*FORMS[:3]))
    assert render_configuration(config).decode() == (
        GOLDEN / "replication_configuration.xml").read_text()


def test_get_bucket_replication_v1_golden():
    config = parse_configuration(doc(v1().replace("<Prefix>", "<ID>old</ID><Prefix>")))
    assert render_configuration(config).decode() == (
        GOLDEN / "replication_configuration_v1.xml").read_text()


def error(body: bytes) -> S3Error:
    with pytest.raises(S3Error) as e:
        parse_configuration(body)
    return e.value


SCHEMA = ("for this version of Cross Region Replication configuration schema. "
          "Please refer to S3 Developer Guide for more information.")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"", "MalformedXML", None),
        (b"<Other/>", "MalformedXML", None),
        (doc(), "MalformedXML", None),
        (doc(*[v2(priority=f"<Priority>{i}</Priority>") for i in range(1001)]),
         "MalformedXML", None),
        (doc(v2(), role=""), "MalformedXML", None),
        (doc(v2(), role=ROLE * 2), "MalformedXML", None),
        (doc(v2(), role=ROLE + "<Other/>"), "MalformedXML", None),
        (doc(v2(), role="<Role>arn:aws:s3:::bucket</Role>"), "InvalidArgument",
         "Invalid Role specified in replication configuration"),
        (doc(v2(extra="<Unknown/>")), "MalformedXML", None),
        (doc(v2().replace("<Status>Enabled</Status>", "<Status>On</Status>")),
         "MalformedXML", None),
        (doc(v2().replace("<Status>Enabled</Status>", "")), "MalformedXML", None),
        (doc(v2(dest="")), "MalformedXML", None),
        (doc(v2(dest="<Destination><StorageClass>STANDARD</StorageClass></Destination>")),
         "MalformedXML", None),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::d</Bucket><Other/></Destination>")),
         "MalformedXML", None),
        (doc(v2(f"<Filter><Prefix>a</Prefix>{TAG}</Filter>")), "MalformedXML", None),
        (doc(v2("<Filter><Size>1</Size></Filter>")), "MalformedXML", None),
        (doc(v2("<Filter/><Prefix>a</Prefix>")), "MalformedXML", None),
        (doc(v1(prefix="")), "MalformedXML", None),
        (doc(v2("<Filter><And><Prefix>a</Prefix></And></Filter>")), "MalformedXML", None),
        (doc(v2("<Filter><Tag><Key>k</Key></Tag></Filter>")), "MalformedXML", None),
        (doc(v2("<Filter><Tag><Key></Key><Value>v</Value></Tag></Filter>")),
         "MalformedXML", None),
        (doc(v2(f"<Filter><And>{TAG}{TAG}</And></Filter>")), "InvalidRequest",
         "Duplicate Tag Keys are not allowed."),
        (doc(v2(priority="")), "InvalidRequest", "Priority must be specified " + SCHEMA),
        (doc(v2(dmr="")), "InvalidRequest", "DeleteMarkerReplication must be specified " + SCHEMA),
        (doc(v1(extra="<Priority>1</Priority>")), "InvalidRequest",
         "Priority cannot be used " + SCHEMA),
        (doc(v1(extra=DMR_OFF)), "InvalidRequest",
         "DeleteMarkerReplication cannot be used " + SCHEMA),
        (doc(v1(), v2()), "InvalidRequest", "Filter cannot be used " + SCHEMA),
        (doc(v2(priority="<Priority>high</Priority>")), "MalformedXML", None),
        (doc(v2(priority="<Priority>-1</Priority>")), "InvalidRequest",
         "Priority must be between 0 and 2147483647."),
        (doc(v2(rule_id="<ID>a</ID>"), v2(rule_id="<ID>b</ID>")), "InvalidRequest",
         "Found duplicate priority 1."),
        (doc(v2(rule_id="<ID>a</ID>"), v2(rule_id="<ID>a</ID>", priority="<Priority>2</Priority>")),
         "InvalidArgument", "Rule Id must be unique"),
        (doc(v2(rule_id=f"<ID>{'x' * 256}</ID>")), "InvalidArgument",
         "Rule Id cannot be greater than 255"),
        (doc(v2(f"<Filter>{TAG}</Filter>", dmr=DMR_ON)), "InvalidRequest",
         "Delete marker replication is not supported if any Tag filter is specified. "
         "Please refer to S3 Developer Guide for more information."),
        (doc(v2(f"<Filter><And><Prefix>a</Prefix>{TAG}</And></Filter>", dmr=DMR_ON)),
         "InvalidRequest", None),
        (doc(v2(dmr="<DeleteMarkerReplication><Status>Yes</Status></DeleteMarkerReplication>")),
         "MalformedXML", None),
        (doc(v2(dest="<Destination><Bucket>dest</Bucket></Destination>")), "InvalidArgument",
         "Invalid bucket ARN"),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket>"
                     "<StorageClass>COLDEST</StorageClass></Destination>")),
         "InvalidStorageClass", None),
        (doc(v2(extra="<ExistingObjectReplication><Status>Enabled</Status>"
                      "</ExistingObjectReplication>")), "NotImplemented", None),
        (doc(v2(extra="<SourceSelectionCriteria><SseKmsEncryptedObjects><Status>Enabled"
                      "</Status></SseKmsEncryptedObjects></SourceSelectionCriteria>")),
         "NotImplemented", None),
        (doc(v2(extra="<SourceSelectionCriteria><ReplicaModifications><Status>Enabled"
                      "</Status></ReplicaModifications></SourceSelectionCriteria>")),
         "NotImplemented", None),
        (doc(v2(extra="<SourceSelectionCriteria></SourceSelectionCriteria>")),
         "InvalidRequest", "SourceSelectionCriteria cannot be empty."),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket>"
                     "<Account>123456789012</Account></Destination>")), "NotImplemented", None),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket><AccessControlTranslation>"
                     "<Owner>Destination</Owner></AccessControlTranslation></Destination>")),
         "NotImplemented", None),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket><EncryptionConfiguration>"
                     "<ReplicaKmsKeyID>k</ReplicaKmsKeyID></EncryptionConfiguration>"
                     "</Destination>")), "NotImplemented", None),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket><ReplicationTime>"
                     "<Status>Enabled</Status><Time><Minutes>15</Minutes></Time>"
                     "</ReplicationTime><Metrics><Status>Enabled</Status></Metrics>"
                     "</Destination>")), "NotImplemented", None),
        (doc(v2(dest="<Destination><Bucket>arn:aws:s3:::dest</Bucket><Metrics>"
                     "<Status>Enabled</Status></Metrics></Destination>")), "InvalidRequest",
         "Replication destination must contain both ReplicationTime and Metrics or neither."),
    ],
)
def test_bad_documents_get_aws_errors(body, code, message):
    err = error(body)
    assert err.code.name == code
    if message is not None:
        assert err.message == message


def test_invalid_arguments_name_the_argument():
    err = error(doc(v2(dest="<Destination><Bucket>dest</Bucket></Destination>")))
    assert err.details == {"ArgumentName": "Bucket", "ArgumentValue": "dest"}
