"""S3 replication configurations: the XML of Put/GetBucketReplication. Pure.

Parsing checks what AWS checks and answers with AWS's errors: the document's
shape (MalformedXML), one schema version per document (V1: a rule's top-level
``Prefix``, no Priority, no DeleteMarkerReplication; V2: a ``Filter``, both
required), unique rule IDs of at most 255 characters, unique priorities,
destination bucket ARNs, storage classes S3 knows. Whether the buckets exist
and keep versions, and whether this deployment serves the class, is the
engine's decision. Features this gateway cannot carry out are refused as
NotImplemented when enabled; a ``Disabled`` one asks for nothing and is accepted.

``ReplicationRule.filter_form`` records how the rule was written, so that
GetBucketReplication answers in the document's own shape: ``prefix`` (V1),
``empty`` (``<Filter/>``), ``filter`` (``Filter/Prefix``), ``tag``
(``Filter/Tag``), ``and`` (``Filter/And``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections import Counter
from xml.etree.ElementTree import Element, tostring

from engine import (
    S3_STORAGE_CLASSES,
    InvalidDestination,
    ReplicationConfig,
    ReplicationRule,
    parse_destination,
)
from s3api import xml
from s3api.errors import S3Error, S3ErrorCode

MAX_RULES = 1000
MAX_ID_LENGTH = 255
MAX_PRIORITY = 2**31 - 1
V1, EMPTY, PREFIX, TAG, AND = "prefix", "empty", "filter", "tag", "and"

_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d+:role/\S+$")
_RULE = frozenset({
    "ID", "Priority", "Prefix", "Filter", "Status", "SourceSelectionCriteria",
    "ExistingObjectReplication", "Destination", "DeleteMarkerReplication",
})
_DESTINATION = frozenset({
    "Bucket", "Account", "StorageClass", "AccessControlTranslation",
    "EncryptionConfiguration", "ReplicationTime", "Metrics",
})
_UNSUPPORTED = ("Account", "AccessControlTranslation", "EncryptionConfiguration")
_SELECTION = frozenset({"SseKmsEncryptedObjects", "ReplicaModifications"})


def _malformed() -> S3Error:
    return S3Error(S3ErrorCode.MalformedXML)


def _invalid_request(message: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidRequest, message)


def _invalid_argument(message: str, name: str, value: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidArgument, message, ArgumentName=name, ArgumentValue=value)


def _not_implemented(what: str) -> S3Error:
    return S3Error(S3ErrorCode.NotImplemented,
                   f"{what} in a replication configuration is not supported by this gateway")


def _schema(name: str, required: bool) -> S3Error:
    verb = "must be specified" if required else "cannot be used"
    return _invalid_request(
        f"{name} {verb} for this version of Cross Region Replication configuration schema. "
        "Please refer to S3 Developer Guide for more information."
    )


def _names(elem: Element, allowed: frozenset[str]) -> list[str]:
    """The children's names; an unknown or repeated one is MalformedXML."""
    names = [xml.local_name(c.tag) for c in elem]
    if not set(names) <= allowed or len(names) != len(set(names)):
        raise _malformed()
    return names


# -- parsing ---------------------------------------------------------------------------


def parse_configuration(body: bytes) -> ReplicationConfig:
    if not body.strip():
        raise _malformed()
    root = xml.parse(body)
    if xml.local_name(root.tag) != "ReplicationConfiguration":
        raise _malformed()
    names = [xml.local_name(c.tag) for c in root]
    if names.count("Role") != 1 or set(names) - {"Role", "Rule"}:
        raise _malformed()
    role = xml.child_text(root, "Role") or ""
    if not _ROLE.match(role):
        raise _invalid_argument("Invalid Role specified in replication configuration",
                                "Role", role)
    elems = xml.children(root, "Rule")
    if not elems or len(elems) > MAX_RULES:
        raise _malformed()
    v1 = any(not xml.children(e, "Filter") for e in elems)
    rules = tuple(_rule(e, i, v1) for i, e in enumerate(elems))
    _check_unique(rules, v1)
    return ReplicationConfig(rules, role)


def _check_unique(rules: tuple[ReplicationRule, ...], v1: bool) -> None:
    ids = Counter(r.rule_id for r in rules)
    for rule_id, count in ids.items():
        if count > 1:
            raise _invalid_argument("Rule Id must be unique", "ID", rule_id)
    if v1:
        return
    priorities = Counter(r.priority for r in rules)
    for priority, count in priorities.items():
        if count > 1:
            raise _invalid_request(f"Found duplicate priority {priority}.")


def _rule(elem: Element, index: int, v1: bool) -> ReplicationRule:
    names = _names(elem, _RULE)
    status = xml.child_text(elem, "Status")
    if status not in ("Enabled", "Disabled") or "Destination" not in names:
        raise _malformed()
    args: dict = {"enabled": status == "Enabled", "rule_id": _rule_id(elem, index)}
    args.update(_rule_filter(elem, names, v1))
    args.update(_versioned_fields(elem, names, v1, bool(args.get("tags"))))
    for criteria in xml.children(elem, "SourceSelectionCriteria"):
        _selection_criteria(criteria)
    for existing in xml.children(elem, "ExistingObjectReplication"):
        if _status(existing):
            raise _not_implemented("ExistingObjectReplication")
    args.update(_destination(xml.children(elem, "Destination")[0]))
    return ReplicationRule(**args)


def _rule_id(elem: Element, index: int) -> str:
    """The rule's ID, or one made up as AWS does (base64 of a UUID): derived from the
    rule itself, so the same document always gets the same IDs."""
    rule_id = xml.child_text(elem, "ID")
    if rule_id:
        if len(rule_id) > MAX_ID_LENGTH:
            raise _invalid_argument("Rule Id cannot be greater than 255", "ID", rule_id)
        return rule_id
    digest = hashlib.sha256(f"{index}:".encode() + tostring(elem)).digest()
    made = uuid.UUID(bytes=digest[:16], version=4)
    return base64.b64encode(str(made).encode()).decode()


def _rule_filter(elem: Element, names: list[str], v1: bool) -> dict:
    if "Filter" in names and "Prefix" in names:
        raise _malformed()
    if not v1:
        return _filter(xml.children(elem, "Filter")[0])
    if "Filter" in names:
        raise _schema("Filter", required=False)  # V1 and V2 rules in one document
    if "Prefix" not in names:
        raise _malformed()
    return {"prefix": xml.child_text(elem, "Prefix") or "", "filter_form": V1}


def _filter(elem: Element) -> dict:
    inner = list(elem)
    if not inner:
        return {"filter_form": EMPTY}
    if len(inner) > 1:
        raise _malformed()
    node = inner[0]
    name = xml.local_name(node.tag)
    if name == "Prefix":
        return {"prefix": node.text or "", "filter_form": PREFIX}
    if name == "Tag":
        key, value = _tag(node)
        return {"tags": {key: value}, "filter_form": TAG}
    if name == "And":
        return {**_and(node), "filter_form": AND}
    raise _malformed()


def _and(elem: Element) -> dict:
    names = [xml.local_name(c.tag) for c in elem]
    if set(names) - {"Prefix", "Tag"} or names.count("Prefix") > 1 or len(names) < 2:
        raise _malformed()  # And joins at least two conditions
    tags: dict[str, str] = {}
    for node in xml.children(elem, "Tag"):
        key, value = _tag(node)
        if key in tags:
            raise _invalid_request("Duplicate Tag Keys are not allowed.")
        tags[key] = value
    return {"prefix": xml.child_text(elem, "Prefix") or "", "tags": tags}


def _tag(elem: Element) -> tuple[str, str]:
    names = [xml.local_name(c.tag) for c in elem]
    key, value = xml.child_text(elem, "Key"), xml.child_text(elem, "Value")
    if sorted(names) != ["Key", "Value"] or not key or value is None:
        raise _malformed()
    return key, value


def _versioned_fields(elem: Element, names: list[str], v1: bool, tagged: bool) -> dict:
    """Priority and delete-marker replication: V2 requires both, V1 allows neither
    (and replicates delete markers, as AWS does for V1 configurations)."""
    if v1:
        for name in ("Priority", "DeleteMarkerReplication"):
            if name in names:
                raise _schema(name, required=False)
        return {"delete_markers": True}
    for name in ("Priority", "DeleteMarkerReplication"):
        if name not in names:
            raise _schema(name, required=True)
    markers = _status(xml.children(elem, "DeleteMarkerReplication")[0])
    if markers and tagged:
        raise _invalid_request(
            "Delete marker replication is not supported if any Tag filter is specified. "
            "Please refer to S3 Developer Guide for more information."
        )
    return {"priority": _priority(xml.child_text(elem, "Priority") or ""),
            "delete_markers": markers}


def _priority(raw: str) -> int:
    if not re.fullmatch(r"\s*-?\d+\s*", raw):
        raise _malformed()
    priority = int(raw)
    if not 0 <= priority <= MAX_PRIORITY:
        raise _invalid_request(f"Priority must be between 0 and {MAX_PRIORITY}.")
    return priority


def _status(elem: Element, extra: frozenset[str] = frozenset()) -> bool:
    """True for ``<Status>Enabled</Status>``, False for Disabled, else MalformedXML."""
    _names(elem, frozenset({"Status"}) | extra)
    status = xml.child_text(elem, "Status")
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    return status == "Enabled"


def _selection_criteria(elem: Element) -> None:
    if not _names(elem, _SELECTION):
        raise _invalid_request("SourceSelectionCriteria cannot be empty.")
    for node in elem:
        if _status(node):
            raise _not_implemented(xml.local_name(node.tag))


def _destination(elem: Element) -> dict:
    names = _names(elem, _DESTINATION)
    bucket = xml.child_text(elem, "Bucket")
    if bucket is None:
        raise _malformed()
    try:
        parse_destination(bucket)
    except InvalidDestination:
        raise _invalid_argument("Invalid bucket ARN", "Bucket", bucket) from None
    for name in _UNSUPPORTED:
        if name in names:
            raise _not_implemented(name)
    _timing(elem, names)
    storage_class = xml.child_text(elem, "StorageClass")
    if storage_class is not None and storage_class not in S3_STORAGE_CLASSES:
        raise S3Error(S3ErrorCode.InvalidStorageClass)
    return {"destination": bucket, "storage_class": storage_class}


def _timing(elem: Element, names: list[str]) -> None:
    """ReplicationTime and Metrics: both or neither, and only Disabled."""
    if ("ReplicationTime" in names) != ("Metrics" in names):
        raise _invalid_request(
            "Replication destination must contain both ReplicationTime and Metrics or neither."
        )
    for node in xml.children(elem, "ReplicationTime"):
        if _status(node, frozenset({"Time"})):
            raise _not_implemented("ReplicationTime")
    for node in xml.children(elem, "Metrics"):
        if _status(node, frozenset({"EventThreshold"})):
            raise _not_implemented("Metrics")


# -- rendering -------------------------------------------------------------------------


def render_configuration(config: ReplicationConfig) -> bytes:
    return xml.render(
        "ReplicationConfiguration",
        [("Role", config.role), *[("Rule", _nodes(r)) for r in config.rules]],
    )


def _nodes(r: ReplicationRule) -> list[xml.Node]:
    v1 = r.filter_form == V1
    out: list[xml.Node] = [("ID", r.rule_id)]
    if v1:
        out.append(("Prefix", r.prefix))
    else:
        out += [("Priority", r.priority), ("Filter", _filter_nodes(r))]
    out.append(("Status", "Enabled" if r.enabled else "Disabled"))
    out.append(("Destination", [("Bucket", r.destination), ("StorageClass", r.storage_class)]))
    if not v1:
        marker = "Enabled" if r.delete_markers else "Disabled"
        out.append(("DeleteMarkerReplication", [("Status", marker)]))
    return out


def _filter_nodes(r: ReplicationRule) -> list[xml.Node]:
    """The Filter's content in the rule's own form (a valid one whatever the form says)."""
    tags: list[xml.Node] = [("Tag", [("Key", k), ("Value", v)]) for k, v in r.tags.items()]
    if not tags:
        return [] if r.filter_form == EMPTY and not r.prefix else [("Prefix", r.prefix)]
    if len(tags) == 1 and not r.prefix and r.filter_form != AND:
        return tags
    prefix: list[xml.Node] = [("Prefix", r.prefix)] if r.prefix or len(tags) < 2 else []
    return [("And", prefix + tags)]
