"""A trivial HTTP server: answers every request at once (body read, 4 KiB or empty reply).

Run as ``python -m benchmarks.calibration PORT``. Loading it with the same
wrk settings as the real targets shows the load generator's ceiling on this
machine: a target measured far below it is not limited by the generator.
"""

from __future__ import annotations

import sys

from aiohttp import web

_PAYLOAD = b"x" * 4096


async def answer(request: web.Request) -> web.Response:
    if request.can_read_body:
        async for _ in request.content.iter_chunked(1 << 20):
            pass
    body = _PAYLOAD if request.method == "GET" else b""
    return web.Response(body=body)


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
