"""One admin command's engine: connect, prepare the pools, run the work, close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dedupe import failpoints
from engine import Engine, Principal
from gateway.server.app import make_engine
from gateway.server.config import Settings

T = TypeVar("T")

class CommandFailed(Exception):
    """The command was valid but its work failed (exit status 1, with this message)."""


# Who admin commands act as: a service of the deployment, never a bucket owner.
CLI = Principal.service("atonix-cli")


def with_engine(settings: Settings, work: Callable[[Engine], Awaitable[T]]) -> T:
    failpoints.arm_from_env()  # ATONIX_FAILPOINTS: crash tests end a command at a step

    async def run() -> T:
        engine = make_engine(settings)
        await engine.connect()
        try:
            return await work(engine)
        finally:
            await engine.close()

    return asyncio.run(run())
