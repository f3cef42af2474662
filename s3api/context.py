"""Per-request state shared by the dispatcher and the handlers."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from engine import Engine, Principal
from s3api.routing import Endpoint


class RequestObserver(Protocol):
    """What the S3 front end reports about each request (wired to metrics by the server)."""

    def observe(
        self, operation: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None: ...


@dataclass(slots=True)
class S3Settings:
    region: str = "us-east-1"
    # Host names under which virtual-hosted-style requests arrive (bucket.<domain>).
    domains: tuple[str, ...] = ("localhost",)
    server_name: str = "AtonixGateway"
    max_skew_seconds: int = 15 * 60


@dataclass(slots=True)
class RequestContext:
    request: web.Request
    endpoint: Endpoint
    engine: Engine
    settings: S3Settings
    # Unique, not secret: a PRNG draw instead of a getrandom() syscall per request.
    request_id: str = field(default_factory=lambda: f"{random.getrandbits(64):016X}")
    user: str | None = None  # uid of the authenticated caller; None when anonymous
    auth: object | None = None  # the sigv4 AuthResult (payload verification needs it)
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def principal(self) -> Principal:
        """Who the engine is told the caller is (decided by the signature, or anonymous)."""
        return Principal.user(self.user) if self.user is not None else Principal.anonymous()

    @property
    def host_id(self) -> str:
        return self.request_id.lower()


Handler = Callable[[RequestContext], Awaitable[web.StreamResponse]]
