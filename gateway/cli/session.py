"""One admin command's engine: connect, prepare the pools, run the work, close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from engine.assembly import ObjectEngine
from gateway.server.app import make_engine
from gateway.server.config import Settings

T = TypeVar("T")


def with_engine(settings: Settings, work: Callable[[ObjectEngine], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings)
        await engine.backend.connect()
        try:
            await engine.prepare()
            return await work(engine)
        finally:
            await engine.backend.close()
            engine.close()

    return asyncio.run(run())
