"""One admin command's engine: connect, prepare the pools, run the work, close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dedupe import failpoints
from engine import Engine, EngineError, Principal
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


def run_admin(
    settings: Settings,
    work: Callable[[Engine], Awaitable[T]],
    failed: Callable[[Exception], str] | None = None,
) -> T:
    """``with_engine``, with failures as the CLI reports them: the engine's refusals
    (NoSuchBucket, InvalidRestore...) as bad input (ValueError: exit 2) and, given
    ``failed``, any other error as ``CommandFailed(failed(error))`` (exit 1)."""
    try:
        return with_engine(settings, work)
    except EngineError as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    except (ValueError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if failed is None:
            raise
        raise CommandFailed(failed(exc)) from None
