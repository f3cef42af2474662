"""A loopback HTTP proxy in front of an S3 endpoint that answers some requests with
500 instead of forwarding them: a remote endpoint failing mid-move, for tests."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

INJECTED = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"


class FlakyProxy:
    """Forwards to ``target``; ``fail(method, path)`` decides which requests get a 500."""

    def __init__(self, target: str, fail) -> None:
        self.target = urlsplit(target)
        self.fail = fail
        self.failed = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    failing = proxy.fail(self.command, self.path)
                    proxy.failed += failing
                    proxy.forwarded += not failing
                if failing:
                    payload = INJECTED
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                target = proxy.target
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = dict(self.headers.items())  # Host as signed
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
