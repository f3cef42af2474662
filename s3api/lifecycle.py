"""S3 lifecycle configurations: the XML of Put/GetBucketLifecycleConfiguration. Pure.

Parsing checks what AWS checks and answers with AWS's errors: the document's
shape (MalformedXML), unique IDs of at most 255 characters, at least one
action per rule, positive day counts, IA transitions after at least 30 days,
storage classes S3 knows. Whether this deployment serves a class is the
engine's decision (the handler asks it). Transitions by ``Date`` are refused
as NotImplemented: only ``Days`` are carried out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from engine import LifecycleRule
from s3api import xml
from s3api.errors import S3Error, S3ErrorCode

MAX_RULES = 1000
_TRANSITION_CLASSES = (
    "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE",
)
_IA_MIN_DAYS = 30


def _malformed() -> S3Error:
    return S3Error(
        S3ErrorCode.MalformedXML,
        "The XML you provided was not well-formed or did not validate against our "
        "published schema",
    )


def _invalid(message: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidArgument, message)


def parse_configuration(body: bytes) -> list[LifecycleRule]:
    if not body.strip():
        raise _malformed()
    root = xml.parse(body)
    if xml.local_name(root.tag) != "LifecycleConfiguration":
        raise _malformed()
    rules = []
    for child in root:
        if xml.local_name(child.tag) != "Rule":
            raise _malformed()
        rules.append(_rule(child))
    if not rules or len(rules) > MAX_RULES:
        raise _malformed()
    ids = [r.rule_id for r in rules if r.rule_id]
    if len(ids) != len(set(ids)):
        raise _invalid("Rule ID must be unique. Found same ID for more than one rule")
    return rules


def _rule(elem: Element) -> LifecycleRule:
    names = [xml.local_name(c.tag) for c in elem]
    rule_id = xml.child_text(elem, "ID") or ""
    if len(rule_id) > 255:
        raise _invalid("ID length should not exceed allowed limit of 255")
    status = xml.child_text(elem, "Status")
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    if ("Filter" in names) == ("Prefix" in names):
        raise _malformed()  # exactly one of Filter and the legacy Prefix
    args: dict = {"rule_id": rule_id, "enabled": status == "Enabled"}
    if "Prefix" in names:
        args.update(prefix=xml.child_text(elem, "Prefix") or "", filter_form="prefix")
    else:
        args.update(_filter(xml.children(elem, "Filter")[0]))
    args["transitions"] = tuple(
        _transition(t, "Days") for t in xml.children(elem, "Transition")
    )
    args["noncurrent_transitions"] = tuple(
        _noncurrent_transition(t) for t in xml.children(elem, "NoncurrentVersionTransition")
    )
    for expiration in xml.children(elem, "Expiration"):
        args.update(_expiration(expiration))
    for nve in xml.children(elem, "NoncurrentVersionExpiration"):
        args["noncurrent_expiration_days"] = _days(
            nve, "NoncurrentDays", "NoncurrentVersionExpiration"
        )
        newer = xml.child_text(nve, "NewerNoncurrentVersions")
        if newer is not None:
            args["newer_noncurrent_versions"] = _count(newer, "NewerNoncurrentVersions")
    for abort in xml.children(elem, "AbortIncompleteMultipartUpload"):
        args["abort_incomplete_days"] = _days(
            abort, "DaysAfterInitiation", "AbortIncompleteMultipartUpload"
        )
    actions = {"Transition", "NoncurrentVersionTransition", "Expiration",
               "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"}
    if not actions & set(names):
        raise S3Error(S3ErrorCode.InvalidRequest,
                      "At least one action needs to be specified in a rule")
    return LifecycleRule(**args)


def _filter(elem: Element) -> dict:
    inner = list(elem)
    if len(inner) > 1:
        raise _malformed()
    if not inner:
        return {"filter_form": "filter"}
    node = inner[0]
    if xml.local_name(node.tag) == "And":
        return {**_conditions(list(node)), "filter_form": "and"}
    return {**_conditions([node]), "filter_form": "filter"}


def _conditions(nodes: list[Element]) -> dict:
    out: dict = {"tags": {}}
    for node in nodes:
        name = xml.local_name(node.tag)
        if name == "Prefix":
            out["prefix"] = node.text or ""
        elif name == "Tag":
            key = xml.child_text(node, "Key")
            if not key:
                raise _malformed()
            out["tags"][key] = xml.child_text(node, "Value") or ""
        elif name == "ObjectSizeGreaterThan":
            out["size_greater_than"] = _count(node.text, name)
        elif name == "ObjectSizeLessThan":
            out["size_less_than"] = _count(node.text, name)
        else:
            raise _malformed()
    return out


def _transition(elem: Element, clock: str) -> tuple[int, str]:
    if xml.child_text(elem, "Date") is not None:
        raise S3Error(S3ErrorCode.NotImplemented, "Transitions by Date are not supported; "
                      "use Days")
    storage_class = xml.child_text(elem, "StorageClass")
    if storage_class not in _TRANSITION_CLASSES:
        raise _malformed()
    days = _days(elem, clock, "Transition", allow_zero=True)
    if storage_class in ("STANDARD_IA", "ONEZONE_IA") and days < _IA_MIN_DAYS:
        raise _invalid(f"'{clock}' in the Transition action for StorageClass {storage_class} "
                       f"must be {_IA_MIN_DAYS} or greater")
    return days, storage_class


def _noncurrent_transition(elem: Element) -> tuple:
    days, storage_class = _transition(elem, "NoncurrentDays")
    newer = xml.child_text(elem, "NewerNoncurrentVersions")
    if newer is None:
        return days, storage_class
    return days, storage_class, _count(newer, "NewerNoncurrentVersions")


def _expiration(elem: Element) -> dict:
    days, date = xml.child_text(elem, "Days"), xml.child_text(elem, "Date")
    marker = xml.child_text(elem, "ExpiredObjectDeleteMarker")
    if sum(v is not None for v in (days, date, marker)) != 1:
        raise _malformed()
    if days is not None:
        return {"expiration_days": _days(elem, "Days", "Expiration")}
    if date is not None:
        try:
            when = dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("Invalid date in the Expiration action") from None
        utc = when.astimezone(dt.UTC) if when.tzinfo else when
        if (utc.hour, utc.minute, utc.second, utc.microsecond) != (0, 0, 0, 0):
            raise _invalid("'Date' must be at midnight GMT")
        return {"expiration_date": date}
    if marker not in ("true", "false"):
        raise _malformed()
    return {"expired_object_delete_marker": marker == "true"}


def _days(elem: Element, name: str, action: str, allow_zero: bool = False) -> int:
    raw = xml.child_text(elem, name)
    if raw is None or not raw.strip().isdigit() or (int(raw) == 0 and not allow_zero):
        raise _invalid(f"'{name}' for {action} action must be a positive integer")
    return int(raw)


def _count(raw: str | None, name: str) -> int:
    if raw is None or not raw.strip().isdigit():
        raise _invalid(f"'{name}' must be a non-negative integer")
    return int(raw)


def render_configuration(rules: Sequence[LifecycleRule]) -> bytes:
    return xml.render("LifecycleConfiguration", [("Rule", _nodes(r)) for r in rules])


def _nodes(r: LifecycleRule) -> list[xml.Node]:
    out: list[xml.Node] = [("ID", r.rule_id)] if r.rule_id else []
    if r.filter_form == "prefix":
        out.append(("Prefix", r.prefix))
    else:
        out.append(("Filter", _filter_nodes(r)))
    out.append(("Status", "Enabled" if r.enabled else "Disabled"))
    out += [("Transition", [("Days", d), ("StorageClass", c)]) for d, c in r.transitions]
    for d, c, *newer in r.noncurrent_transitions:
        nvt: list[xml.Node] = [("NoncurrentDays", d), ("StorageClass", c)]
        if newer:
            nvt.append(("NewerNoncurrentVersions", newer[0]))
        out.append(("NoncurrentVersionTransition", nvt))
    if r.expiration_days is not None:
        out.append(("Expiration", [("Days", r.expiration_days)]))
    elif r.expiration_date is not None:
        out.append(("Expiration", [("Date", r.expiration_date)]))
    elif r.expired_object_delete_marker:
        out.append(("Expiration", [("ExpiredObjectDeleteMarker", "true")]))
    if r.noncurrent_expiration_days is not None:
        nve: list[xml.Node] = [("NoncurrentDays", r.noncurrent_expiration_days)]
        if r.newer_noncurrent_versions is not None:
            nve.append(("NewerNoncurrentVersions", r.newer_noncurrent_versions))
        out.append(("NoncurrentVersionExpiration", nve))
    if r.abort_incomplete_days is not None:
        out.append(("AbortIncompleteMultipartUpload",
                    [("DaysAfterInitiation", r.abort_incomplete_days)]))
    return out


def _filter_nodes(r: LifecycleRule) -> list[xml.Node]:
    conditions: list[xml.Node] = []
    if r.prefix or (r.filter_form == "filter" and not (r.tags or r.size_greater_than
                                                        or r.size_less_than)):
        conditions.append(("Prefix", r.prefix))
    conditions += [("Tag", [("Key", k), ("Value", v)]) for k, v in r.tags.items()]
    if r.size_greater_than is not None:
        conditions.append(("ObjectSizeGreaterThan", r.size_greater_than))
    if r.size_less_than is not None:
        conditions.append(("ObjectSizeLessThan", r.size_less_than))
    if r.filter_form == "and":
        return [("And", conditions)]
    return conditions
