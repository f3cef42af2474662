"""S3 XML bodies (pure): render responses, parse requests safely.

Responses are built from plain Python values: a node is ``(tag, value)``
where value is a string, a number, None (omitted), or a list of nodes
(children). Parsing uses defusedxml, so entity-expansion and external-entity
attacks in request bodies fail as MalformedXML instead of reaching us.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from s3api.errors import S3Error, S3ErrorCode

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'

Node = tuple[str, Any]
_SPECIAL = re.compile(r'[&<>"\r]')


class Fragment(str):
    """Already rendered (and escaped) XML, placed among nodes as it is: the parts of
    a response built in bulk (a listing's thousand entries) skip the node walk."""


def escape(text: str) -> str:
    return _escape(text) if _SPECIAL.search(text) else text


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    )


def _render(node: Node | Fragment, out: list[str]) -> None:
    if isinstance(node, Fragment):
        out.append(node)
        return
    tag, value = node
    if value is None:
        return
    if isinstance(value, list):
        out.append(f"<{tag}>")
        for child in value:
            _render(child, out)
        out.append(f"</{tag}>")
        return
    if isinstance(value, bool):
        value = "true" if value else "false"
    out.append(f"<{tag}>{_escape(str(value))}</{tag}>")


def render(root: str, children: Iterable[Node], namespace: str | None = S3_NS) -> bytes:
    """A complete XML document with the S3 namespace on the root element."""
    out: list[str] = [f'<{root} xmlns="{namespace}">' if namespace else f"<{root}>"]
    for child in children:
        _render(child, out)
    out.append(f"</{root}>")
    return _DECL + "".join(out).encode("utf-8")


def render_fragment(tag: str, value: Any) -> Fragment:
    """One node rendered on its own, to be repeated among bulk-rendered parts."""
    out: list[str] = []
    _render((tag, value), out)
    return Fragment("".join(out))


def render_text(root: str, text: str, namespace: str | None = S3_NS) -> bytes:
    """A document whose root element holds only text (e.g. LocationConstraint)."""
    attr = f' xmlns="{namespace}"' if namespace else ""
    return _DECL + f"<{root}{attr}>{_escape(text)}</{root}>".encode()


def timestamp(epoch: float) -> str:
    """ISO 8601 with milliseconds and Z, as S3 lists use (2006-02-03T16:45:09.000Z)."""
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)  # as datetime.fromtimestamp rounds (half to even)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return f"{_seconds(int(whole))}.{micros // 1000:03d}Z"


@lru_cache(maxsize=4096)
def _seconds(epoch: int) -> str:
    """The "YYYY-MM-DDTHH:MM:SS" part (listings format many entries of the same second)."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@lru_cache(maxsize=4096)
def http_date(epoch: float) -> str:
    """RFC 7231 date for Last-Modified (second precision; cached: hot objects repeat)."""
    t = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    return t.strftime("%a, %d %b %Y %H:%M:%S GMT")


def error_document(err: S3Error, request_id: str, host_id: str, resource: str | None) -> bytes:
    children: list[Node] = [("Code", err.code.name), ("Message", err.message)]
    children += [(k, v) for k, v in err.details.items()]
    children += [
        ("Resource", err.resource or resource),
        ("RequestId", request_id),
        ("HostId", host_id),
    ]
    return render("Error", children, namespace=None)


def parse(body: bytes) -> Element:
    """Parse a request body; any malformed or dangerous XML is MalformedXML."""
    try:
        return SafeET.fromstring(body)
    except (ParseError, DefusedXmlException, ValueError):
        raise S3Error(S3ErrorCode.MalformedXML) from None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child_text(elem: Element, name: str) -> str | None:
    """Text of the first direct child named ``name`` (namespace ignored)."""
    for child in elem:
        if local_name(child.tag) == name:
            return child.text or ""
    return None


def children(elem: Element, name: str) -> list[Element]:
    return [c for c in elem if local_name(c.tag) == name]
