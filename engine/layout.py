"""Where things live on the backend: pool names, object ids and omap key spaces (pure).

Kept in one module so that docs/design.md's "data layout" section has a single
source of truth in code.
"""

from __future__ import annotations

import zlib

# Pools, each prefixed with the deployment's pool prefix (``--pool-prefix``).
META_POOL = "meta"  # bucket records, bucket index shards, identities
DATA_POOL = "data"  # object payload stripes (entries written without dedupe)
CHUNKS_POOL = "chunks"  # content-addressed dedupe chunks ``c.<sha256>`` (dedupe.store)

# Objects in the meta pool.
BUCKET_REGISTRY = "buckets"  # omap: bucket name -> BucketRecord (for ListBuckets)
USERS_OBJECT = "iam.users"  # omap: uid -> user record
KEYS_OBJECT = "iam.keys"  # omap: access key id -> {uid, secret}

# Omap key spaces inside an index shard. Object keys are prefixed so that
# shard header fields can never collide with (or sort among) object keys.
SHARD_HEADER = "h.bucket"  # "<bucket id>:<state>"; every index write is guarded on it
# Generation tokens: a write replaces the token of its key's slot
# (``h.gen.<slot>``); put_if guards on it, so only writes to keys of the same
# slot (1 in GENERATION_SLOTS) make a conditional write retry.
SHARD_GENERATION = "h.gen"
GENERATION_SLOTS = 1024
OBJECT_PREFIX = "o"
# Range-partitioned shards (engine.index_shards): each shard's own range,
# successor and split state, and a sample of its keys for the split trigger.
SHARD_RANGE = "h.range"
SAMPLE_PREFIX = "s"
# The shard map lives in the root shard: ``m<lower bound> -> shard id``.
SHARD_MAP_PREFIX = "m"
# Versioning (engine.versioning): noncurrent versions of a key,
# ``v<escaped key>\x01\x01<token>`` (tokens sort newest first), and ``n<key>`` ->
# the token of the key's noncurrent null version, if it has one. RADOS omap keys
# cannot hold NUL, so the key's own \x01 is escaped as \x01\x02, which keeps
# key order: every version of a key sorts before any longer key's. The current
# version of every key stays ``o<key>``, so listing objects never reads a
# noncurrent version.
VERSION_PREFIX = "v"
NULL_PREFIX = "n"
_ESC, _ESCAPED, VERSION_SEPARATOR = "\x01", "\x01\x02", "\x01\x01"
_AFTER_ALL = "\U0010ffff"
# In-progress multipart uploads of the bucket, ``u<escaped key>\x01\x01<upload id>``
# (see engine.upload_records for the order-preserving escape).
UPLOAD_PREFIX = "u"

# Payload stripes: large objects are cut into RADOS objects of this size.
DEFAULT_STRIPE_SIZE = 4 * 1024 * 1024
# Dedupe manifests in the meta pool are ``m.<owner>``; a writer starts a new
# manifest every MANIFEST_SPAN bytes, so one manifest stays bounded (~1.5 MiB).
MANIFEST_PREFIX = "m."
MANIFEST_SPAN = 1024**3
# Objects up to this size live inline in their index entry (one omap write).
DEFAULT_INLINE_LIMIT = 64 * 1024


def pool_name(prefix: str, pool: str) -> str:
    return f"{prefix}.{pool}"


def bucket_object(name: str) -> str:
    """The bucket's record; its exclusive creation is the commit point of CreateBucket."""
    return f"bucket.{name}"


def index_shard(bucket_id: str, shard: int = 0) -> str:
    return f"idx.{bucket_id}.{shard:04x}"


def index_shard_object(bucket_id: str, shard_id: str) -> str:
    """A shard by its id (the root is "0000", so it keeps ``index_shard(bucket_id)``'s name)."""
    return f"idx.{bucket_id}.{shard_id}"


def shard_map_key(lower_bound: str) -> str:
    return SHARD_MAP_PREFIX + lower_bound


def sample_key(object_key: str) -> str:
    return SAMPLE_PREFIX + object_key


def generation_key(object_key: str) -> str:
    return generation_slot_key(zlib.crc32(object_key.encode()) % GENERATION_SLOTS)


def generation_slot_key(slot: int) -> str:
    return f"{SHARD_GENERATION}.{slot:02x}"


def index_key(object_key: str) -> str:
    return OBJECT_PREFIX + object_key


def object_key(index_key_: str) -> str:
    return index_key_[len(OBJECT_PREFIX) :]


def version_key(object_key: str, token: str) -> str:
    return versions_of(object_key) + token


def versions_of(object_key: str) -> str:
    """The prefix of every noncurrent version of ``object_key`` (and of no other key's)."""
    return VERSION_PREFIX + object_key.replace(_ESC, _ESCAPED) + VERSION_SEPARATOR


def versions_after(object_key: str) -> str:
    """Sorts after every version of ``object_key`` and before any greater key's."""
    return versions_of(object_key) + _AFTER_ALL


def versions_under(prefix: str) -> str:
    """The prefix of the versions of every key that starts with ``prefix``."""
    return VERSION_PREFIX + prefix.replace(_ESC, _ESCAPED)


def split_version_key(omap_key: str) -> tuple[str, str]:
    """(object key, token) of a ``v`` key (tokens never hold the separator)."""
    escaped, _, tok = omap_key[len(VERSION_PREFIX) :].rpartition(VERSION_SEPARATOR)
    return escaped.replace(_ESCAPED, _ESC), tok


def null_key(object_key: str) -> str:
    return NULL_PREFIX + object_key


def upload_object(bucket_id: str, upload_id: str) -> str:
    """One multipart upload's state (meta pool): omap of its metadata and part records."""
    return f"upload.{bucket_id}.{upload_id}"


def stripe_oid(data_prefix: str, n: int) -> str:
    return f"{data_prefix}.{n:08x}"


def manifest_object(owner: str) -> str:
    """A dedupe manifest (meta pool); ``owner`` is also its chunks' reference name."""
    return f"{MANIFEST_PREFIX}{owner}"


def shard_header(bucket_id: str, state: str) -> bytes:
    return f"{bucket_id}:{state}".encode()
