"""S3 request routing (pure): wire request -> one ``Endpoint`` value, before any handler runs.

Two steps, both free of I/O:
1. ``parse_target`` finds bucket and key from the Host header and the raw
   path (virtual-hosted style ``bucket.domain`` or path style ``/bucket/key``).
   The path is percent-decoded exactly once: ``%2F`` becomes ``/`` in a key,
   ``..`` and unicode are kept verbatim, never normalised.
2. ``route`` names the operation from the method, the sub-resource query
   parameters and a few headers (copy source, multipart parameters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from engine import Operation
from s3api.errors import S3Error, S3ErrorCode

# Query parameters that select a sub-resource, with the CamelCase they give
# the operation name (GET ?tagging on an object -> GetObjectTagging).
SUBRESOURCES: dict[str, str] = {
    "accelerate": "Accelerate",
    "acl": "Acl",
    "analytics": "Analytics",
    "attributes": "Attributes",
    "cors": "Cors",
    "delete": "Delete",
    "encryption": "Encryption",
    "intelligent-tiering": "IntelligentTiering",
    "inventory": "Inventory",
    "legal-hold": "LegalHold",
    "lifecycle": "Lifecycle",
    "location": "Location",
    "logging": "Logging",
    "metrics": "Metrics",
    "notification": "Notification",
    "object-lock": "ObjectLock",
    "ownershipControls": "OwnershipControls",
    "policy": "Policy",
    "policyStatus": "PolicyStatus",
    "publicAccessBlock": "PublicAccessBlock",
    "replication": "Replication",
    "requestPayment": "RequestPayment",
    "restore": "Restore",
    "retention": "Retention",
    "select": "Select",
    "tagging": "Tagging",
    "torrent": "Torrent",
    "uploadId": "UploadId",
    "uploads": "Uploads",
    "versioning": "Versioning",
    "versions": "Versions",
    "website": "Website",
    "x-atonix-chunks": "ReplicaChunks",  # not S3: a shipper's question (chunk transfer)
    "x-atonix-digest": "ReplicaDigest",  # not S3: another region's verify
}

# CORS preflight requests (OPTIONS): never signed, so never authenticated.
PREFLIGHT_OPERATIONS = frozenset(op for op in Operation if op.is_preflight)

# Operations whose names do not follow the Verb + Bucket/Object + Sub pattern.
_SPECIAL: dict[tuple[str, str, str], Operation] = {
    ("GET", "bucket", ""): Operation.LIST_OBJECTS,
    ("PUT", "bucket", ""): Operation.CREATE_BUCKET,
    ("POST", "bucket", ""): Operation.POST_OBJECT,
    ("POST", "bucket", "delete"): Operation.DELETE_OBJECTS,
    ("GET", "bucket", "location"): Operation.GET_BUCKET_LOCATION,
    ("GET", "bucket", "versions"): Operation.LIST_OBJECT_VERSIONS,
    ("GET", "bucket", "uploads"): Operation.LIST_MULTIPART_UPLOADS,
    ("GET", "object", "uploadId"): Operation.LIST_PARTS,
    ("PUT", "object", "uploadId"): Operation.UPLOAD_PART,
    ("POST", "object", "uploads"): Operation.CREATE_MULTIPART_UPLOAD,
    ("POST", "object", "uploadId"): Operation.COMPLETE_MULTIPART_UPLOAD,
    ("DELETE", "object", "uploadId"): Operation.ABORT_MULTIPART_UPLOAD,
    ("POST", "object", "restore"): Operation.RESTORE_OBJECT,
    ("POST", "object", "select"): Operation.SELECT_OBJECT_CONTENT,
}


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str | None
    key: str | None
    virtual_host: bool = False

    @property
    def resource(self) -> str:
        """The Resource element of error bodies: /bucket/key as the client named it."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + (f"/{self.key}" if self.key else "")


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: Operation
    target: S3Target
    query: Mapping[str, str] = field(default_factory=dict)
    # For Operation.UNKNOWN: the name the method and sub-resource compose
    # (HeadBucketCors), answered NotImplemented once the request is authenticated.
    composed: str = ""

    @property
    def label(self) -> str:
        """The operation's name for logs, metrics and error messages."""
        return self.composed or self.name

    @property
    def bucket(self) -> str | None:
        return self.target.bucket

    @property
    def key(self) -> str | None:
        return self.target.key


def split_host(host: str) -> str:
    """Host header without port, lower-cased (handles [v6]:port)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def parse_target(host: str, raw_path: str, domains: Sequence[str]) -> S3Target:
    hostname = split_host(host)
    try:
        path = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    except UnicodeDecodeError:
        raise S3Error(S3ErrorCode.InvalidURI) from None
    for domain in domains:
        if hostname.endswith("." + domain) and len(hostname) > len(domain) + 1:
            bucket = hostname[: -len(domain) - 1]
            key = path[1:] if path.startswith("/") else path
            return S3Target(bucket, key or None, virtual_host=True)
    if not path.startswith("/"):
        raise S3Error(S3ErrorCode.InvalidRequest, "The request path must start with /")
    bucket, _, key = path[1:].partition("/")
    return S3Target(bucket or None, key or None)


def parse_query(raw_query: str) -> dict[str, str]:
    """Query parameters (first value wins); value-less parameters map to ''."""
    out: dict[str, str] = {}
    for k, v in parse_qsl(raw_query, keep_blank_values=True):
        out.setdefault(k, v)
    return out


def route(method: str, target: S3Target, query: Mapping[str, str], headers: Mapping) -> Endpoint:
    method = method.upper()
    if method == "OPTIONS":
        # A CORS preflight, answered from the bucket's CORS rules without authentication.
        preflight = Operation.OPTIONS_OBJECT if target.key is not None else Operation.OPTIONS_BUCKET
        return Endpoint(preflight, target)
    if target.bucket is None:
        if method == "GET":
            return Endpoint(Operation.LIST_BUCKETS, target, query)
        raise S3Error(S3ErrorCode.MethodNotAllowed, resource="/")
    level = "object" if target.key is not None else "bucket"
    sub = _subresource(query, level)
    operation = _SPECIAL.get((method, level, sub))
    if operation is not None:
        return Endpoint(_refine(operation, query, headers), target, query)
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}
    if method not in verb:
        raise S3Error(S3ErrorCode.MethodNotAllowed, resource=target.resource)
    # Verb + Bucket/Object + sub-resource: GET /bucket?cors is GetBucketCors.
    name = verb[method] + level.capitalize() + SUBRESOURCES.get(sub, "")
    try:
        return Endpoint(_refine(Operation(name), query, headers), target, query)
    except ValueError:  # a method and sub-resource that name no S3 operation we know
        return Endpoint(Operation.UNKNOWN, target, query, composed=name)


def _subresource(query: Mapping[str, str], level: str) -> str:
    if "uploadId" in query:
        return "uploadId"
    for k in query:
        if k in SUBRESOURCES and k != "uploadId":
            return k
    return ""


def _refine(operation: Operation, query: Mapping[str, str], headers: Mapping) -> Operation:
    if operation is Operation.LIST_OBJECTS and query.get("list-type") == "2":
        return Operation.LIST_OBJECTS_V2
    if operation is Operation.PUT_OBJECT and "x-amz-copy-source" in headers:
        return Operation.COPY_OBJECT
    if operation is Operation.UPLOAD_PART and "x-amz-copy-source" in headers:
        return Operation.UPLOAD_PART_COPY
    return operation
