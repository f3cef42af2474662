"""Where things live on the backend: pool names, object ids and omap key spaces (pure).

Kept in one module so that docs/design.md's "data layout" section has a single
source of truth in code.
"""

from __future__ import annotations

# Pools, each prefixed with the deployment's pool prefix (``--pool-prefix``).
META_POOL = "meta"  # bucket records, bucket index shards, identities
DATA_POOL = "data"  # object payload stripes

# Objects in the meta pool.
BUCKET_REGISTRY = "buckets"  # omap: bucket name -> BucketRecord (for ListBuckets)
USERS_OBJECT = "iam.users"  # omap: uid -> user record
KEYS_OBJECT = "iam.keys"  # omap: access key id -> {uid, secret}

# Omap key spaces inside an index shard. Object keys are prefixed so that
# shard header fields can never collide with (or sort among) object keys.
SHARD_HEADER = "h.bucket"  # "<bucket id>:<state>"; every index write is guarded on it
SHARD_GENERATION = "h.gen"  # random token replaced by every write; conditional writes guard on it
OBJECT_PREFIX = "o"

# Payload stripes: large objects are cut into RADOS objects of this size.
DEFAULT_STRIPE_SIZE = 4 * 1024 * 1024
# Objects up to this size live inline in their index entry (one omap write).
DEFAULT_INLINE_LIMIT = 64 * 1024


def pool_name(prefix: str, pool: str) -> str:
    return f"{prefix}.{pool}"


def bucket_object(name: str) -> str:
    """The bucket's record; its exclusive creation is the commit point of CreateBucket."""
    return f"bucket.{name}"


def index_shard(bucket_id: str, shard: int = 0) -> str:
    return f"idx.{bucket_id}.{shard:04x}"


def index_key(object_key: str) -> str:
    return OBJECT_PREFIX + object_key


def object_key(index_key_: str) -> str:
    return index_key_[len(OBJECT_PREFIX) :]


def stripe_oid(data_prefix: str, n: int) -> str:
    return f"{data_prefix}.{n:08x}"


def shard_header(bucket_id: str, state: str) -> bytes:
    return f"{bucket_id}:{state}".encode()
