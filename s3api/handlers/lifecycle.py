"""Put/Get/DeleteBucketLifecycleConfiguration: the bucket's lifecycle rules, stored for
the tiering service, which carries them out with the same mover as the policy file.

Every transition's storage class must be one this deployment serves (the engine
decides: InvalidStorageClass otherwise), so no rule is accepted that could
never run.
"""

from __future__ import annotations

from aiohttp import web

from engine import LIFECYCLE_ITEM, Operation, decode_rules, encode_rules
from s3api import lifecycle
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.bucket_config import read_config_body, read_owned_config, write_owned_config
from s3api.responses import empty, xml_response


async def put_bucket_lifecycle(ctx: RequestContext) -> web.StreamResponse:
    bucket, body = await read_config_body(ctx)
    rules = lifecycle.parse_configuration(body)
    for rule in rules:
        for _, storage_class, *_ in rule.transitions + rule.noncurrent_transitions:
            ctx.engine.check_storage_class(storage_class)
    await write_owned_config(ctx, LIFECYCLE_ITEM, encode_rules(rules), bucket)
    return empty()


async def get_bucket_lifecycle(ctx: RequestContext) -> web.StreamResponse:
    record, stored = await read_owned_config(ctx, LIFECYCLE_ITEM)
    if stored is None:
        raise S3Error(S3ErrorCode.NoSuchLifecycleConfiguration, BucketName=record.name)
    return xml_response(lifecycle.render_configuration(decode_rules(stored)))


async def delete_bucket_lifecycle(ctx: RequestContext) -> web.StreamResponse:
    await write_owned_config(ctx, LIFECYCLE_ITEM, None)
    return empty(204)


HANDLERS = {
    Operation.PUT_BUCKET_LIFECYCLE: put_bucket_lifecycle,
    Operation.GET_BUCKET_LIFECYCLE: get_bucket_lifecycle,
    Operation.DELETE_BUCKET_LIFECYCLE: delete_bucket_lifecycle,
}
