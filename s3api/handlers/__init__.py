"""S3 operation handlers, one module per operation group; ``HANDLERS`` maps names to them."""

from __future__ import annotations

from engine import Operation
from s3api.context import Handler
from s3api.handlers import (
    acl,
    bucket_tagging,
    buckets,
    copy,
    cors,
    delete_many,
    lifecycle,
    listing,
    multipart,
    object_attributes,
    object_lock,
    objects,
    post_upload,
    replica_chunks,
    replica_digest,
    replication,
    restore,
    service,
    tagging,
    unconfigured,
    versions,
)

HANDLERS: dict[Operation, Handler] = {
    **service.HANDLERS,
    **buckets.HANDLERS,
    **listing.HANDLERS,
    **objects.HANDLERS,
    **replica_chunks.HANDLERS,
    **replica_digest.HANDLERS,
    **object_lock.HANDLERS,
    **multipart.HANDLERS,
    **versions.HANDLERS,
    **bucket_tagging.HANDLERS,
    **acl.HANDLERS,
    **cors.HANDLERS,
    **lifecycle.HANDLERS,
    **replication.HANDLERS,
    **post_upload.HANDLERS,
    **copy.HANDLERS,
    **delete_many.HANDLERS,
    **object_attributes.HANDLERS,
    **tagging.HANDLERS,
    **restore.HANDLERS,
    **unconfigured.HANDLERS,
}
