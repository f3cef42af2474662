"""S3 operation handlers, one module per operation group; ``HANDLERS`` maps names to them."""

from __future__ import annotations

from s3api.context import Handler
from s3api.handlers import buckets, listing, objects, service

HANDLERS: dict[str, Handler] = {
    **service.HANDLERS,
    **buckets.HANDLERS,
    **listing.HANDLERS,
    **objects.HANDLERS,
}
