"""The replication client's reading of a plain S3 endpoint's answers: a
CompleteMultipartUpload that answers 200 with an ``<Error>`` body failed (S3 sends
the status before the work is done), and the upload is aborted. The endpoint is a
loopback stand-in that misbehaves on purpose, as a remote S3 may."""

from __future__ import annotations

import pytest
from aiohttp import web

from engine import ObjectEntry
from replication.remote_region import RegionClient, RegionSettings, RegionUnavailable

UPLOAD = (b'<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
          b"<UploadId>u1</UploadId></InitiateMultipartUploadResult>")
FAILED = b"<Error><Code>InternalError</Code><Message>later</Message></Error>"


async def test_a_complete_that_answers_200_with_an_error_fails():
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(f"{request.method} {request.query_string}")
        if request.method == "POST" and "uploads" in request.query:
            return web.Response(body=UPLOAD)
        if request.method == "PUT":
            return web.Response(headers={"ETag": '"e"'})
        if request.method == "POST":
            return web.Response(body=FAILED)  # 200, and yet an error
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    client = RegionClient(RegionSettings("aws", (f"http://127.0.0.1:{port}",), "k", "s",
                                         plain=True, multipart_bytes=4, part_bytes=4))

    async def body():
        yield b"12345678"

    try:
        with pytest.raises(RegionUnavailable, match="CompleteMultipartUpload failed"):
            await client.put_replica("b", "k", ObjectEntry(8, '"x-2"', 0.0), body())
    finally:
        await client.close()
        await runner.cleanup()
    assert seen[-1] == "DELETE uploadId=u1"  # aborted
