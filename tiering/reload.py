"""Reloading ``tiering.yaml`` while the gateways run.

A ``PolicyWatcher`` looks at the policy file every few seconds (its size,
mtime and a hash of its bytes, so an edit within one mtime tick is still
seen). A file that changed and parses is the new policy: the watcher hands it
to its subscribers (the engine's tiers, the mover). A file that changed and
does not parse, or cannot be read, leaves the last good policy in force; the
watcher logs why once per bad version of the file and keeps the reason in
``error`` for ``/health`` until a good version appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from tiering.policy import Policy
from tiering.policy_file import PolicyError, parse_policy

log = logging.getLogger("atonix.tiering")

Subscriber = Callable[[Policy], None]


class PolicyWatcher:
    def __init__(self, path: str | Path, policy: Policy, interval: float = 5.0) -> None:
        self.path = Path(path)
        self.policy = policy  # the last good one
        self.interval = interval
        self.error: str | None = None  # why the file on disk is not in force
        self.reloads = 0
        self._subscribers: list[Subscriber] = []
        self._seen = self._fingerprint()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def check(self) -> bool:
        """Look at the file once; True if a new policy came into force."""
        seen = self._fingerprint()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            text = self.path.read_text()
            policy = parse_policy(text, str(self.path))
        except (OSError, UnicodeDecodeError, PolicyError) as exc:
            self.error = f"tiering policy not reloaded, the last good one stays: {exc}"
            log.error("%s", self.error)
            return False
        for subscriber in self._subscribers:
            try:
                subscriber(policy)
            except Exception as exc:  # e.g. the engine refused the tiers: keep the old
                self.error = f"tiering policy not applied, the last good one stays: {exc}"
                log.exception("%s", self.error)
                return False
        self.policy = policy
        self.error = None
        self.reloads += 1
        log.info("tiering policy reloaded from %s", self.path)
        return True

    def start(self) -> asyncio.Task:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                with contextlib.suppress(Exception):
                    self.check()

        return asyncio.create_task(loop(), name="tiering-policy-watcher")

    def _fingerprint(self) -> tuple[int, int, str] | None:
        try:
            st = self.path.stat()
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, digest
