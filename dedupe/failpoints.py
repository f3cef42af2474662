"""Named failpoints: tests switch one on to make the code fail at that exact step.

Production code calls ``await failpoints.hit("store.after_create")`` at each step
of a write; with nothing armed that is one dict lookup. Tests arm a point with
``armed(name)`` to raise ``FailpointHit`` there (a simulated crash: the caller
does no cleanup, as a killed process would not), or with an async ``hook`` to
run something at that instant (e.g. the garbage collector) and so force one
exact interleaving of two racing operations.

A gateway process can be armed from its environment for kill -9 tests:
``ATONIX_FAILPOINTS="store.after_create=exit,writer.before_finish=raise"``
(``exit`` ends the process at once with status 137, like SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from dedupe.errors import FailpointHit

Hook = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class _Armed:
    action: str  # "raise" | "exit" | "hook"
    skip: int = 0  # let this many hits pass first
    times: int | None = None  # fire at most this often (None: always)
    hook: Hook | None = None
    fired: int = 0


_armed: dict[str, _Armed] = {}


async def hit(name: str) -> None:
    """Mark that execution reached the step ``name``; fail there if it is armed."""
    point = _armed.get(name)
    if point is None:
        return
    if point.skip > 0:
        point.skip -= 1
        return
    if point.times is not None and point.fired >= point.times:
        return
    point.fired += 1
    if point.action == "exit":
        os._exit(137)
    if point.action == "hook":
        assert point.hook is not None
        await point.hook()
        return
    raise FailpointHit(name)


def arm(
    name: str,
    action: str = "raise",
    *,
    skip: int = 0,
    times: int | None = None,
    hook: Hook | None = None,
) -> None:
    if action not in ("raise", "exit", "hook"):
        raise ValueError(f"unknown failpoint action {action!r}")
    if (action == "hook") != (hook is not None):
        raise ValueError("a hook is needed exactly for action 'hook'")
    _armed[name] = _Armed(action, skip, times, hook)


def disarm(name: str | None = None) -> None:
    """Disarm one point, or all of them."""
    if name is None:
        _armed.clear()
    else:
        _armed.pop(name, None)


def fired(name: str) -> int:
    point = _armed.get(name)
    return 0 if point is None else point.fired


@contextlib.contextmanager
def armed(name: str, action: str = "raise", **kwargs) -> Iterator[None]:
    arm(name, action, **kwargs)
    try:
        yield
    finally:
        disarm(name)


def arm_from_env(value: str | None = None) -> None:
    """Arm points from ``ATONIX_FAILPOINTS`` (``name=action[@skip],...``: ``@3`` lets three
    hits pass first)."""
    spec = os.environ.get("ATONIX_FAILPOINTS", "") if value is None else value
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, action = item.partition("=")
        action, _, skip = action.partition("@")
        arm(name, action or "raise", skip=int(skip or 0))
