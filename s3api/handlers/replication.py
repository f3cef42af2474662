"""Put/Get/DeleteBucketReplication: the bucket's replication configuration, kept by the
engine, which checks it as S3 does (versioning on source and destinations, the
destinations exist and belong to the same owner, the storage class is served)
and marks the versions it covers for the replication service to ship.
"""

from __future__ import annotations

from aiohttp import web

from engine import Operation
from s3api import replication
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.handlers.bucket_config import read_config_body
from s3api.responses import empty, xml_response


async def put_bucket_replication(ctx: RequestContext) -> web.StreamResponse:
    bucket, body = await read_config_body(ctx)
    await bucket.set_replication(replication.parse_configuration(body))
    return empty()


async def get_bucket_replication(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    config = await bucket.replication()
    if config is None:
        raise S3Error(S3ErrorCode.ReplicationConfigurationNotFoundError, BucketName=bucket.name)
    return xml_response(replication.render_configuration(config))


async def delete_bucket_replication(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    await bucket.set_replication(None)
    return empty(204)


HANDLERS = {
    Operation.PUT_BUCKET_REPLICATION: put_bucket_replication,
    Operation.GET_BUCKET_REPLICATION: get_bucket_replication,
    Operation.DELETE_BUCKET_REPLICATION: delete_bucket_replication,
}
