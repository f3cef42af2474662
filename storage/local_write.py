"""The write path of the local backend: one compound ``WriteOp``, atomically.

``PoolWriter`` is mixed into ``PoolStore`` (storage.local_store); it runs on a
worker thread. See ``storage.local`` for the design and the crash-safety argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from storage import local_files as lf
from storage.errors import GuardFailed, ObjectExists, ObjectNotFound
from storage.protocol import WriteOp, omap_guard_holds

_DATA_STEPS = ("write", "append", "truncate")
_CREATING = ("create", "write_full", "write", "append", "set_xattr", "omap_set")
_NEEDS_OBJECT = ("remove", "omap_rm", "omap_clear", "rm_xattr")


@dataclass(slots=True, eq=False)
class _Pending:
    """One caller's op, staged, waiting in the group-commit queue."""

    oid: str
    op: WriteOp
    steps: list[tuple]
    has_reset: bool
    staged: bytes | None
    staged_file: tuple[str, int] | None
    cleanup: dict = field(default_factory=lambda: {"fds": []})
    error: BaseException | None = None
    done: bool = False


class PoolWriter:
    """Applies WriteOps to one pool (needs ``conn()``, ``exclusive()``, ``data_dir``,
    ``durable``, ``inline_max`` and the group-commit queue and locks from the class
    it is mixed into)."""

    data_dir: Path
    durable: bool
    inline_max: int
    _queue: list[_Pending]
    _queue_lock: threading.Lock
    _leader_lock: threading.Lock

    def conn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    # the one write path ------------------------------------------------------
    def operate(self, oid: str, op: WriteOp) -> None:
        """Apply op atomically; returns once it is committed (durably, when durable).

        Group commit: concurrent callers queue their ops and whichever holds the
        leader lock applies everything queued in one transaction, each op under
        its own savepoint (a failed guard undoes only that op), then commits
        once: one WAL fsync for the whole batch instead of one per op. No caller
        returns before the COMMIT that contains its op.
        """
        pending = self._stage(oid, op)
        with self._queue_lock:
            self._queue.append(pending)
        with self._leader_lock:
            while not pending.done:
                if not self._commit_batch():
                    raise RuntimeError("group commit lost a queued write op")
        if pending.error is not None:
            raise pending.error

    def _stage(self, oid: str, op: WriteOp) -> _Pending:
        steps = list(op.steps)
        if op.exclusive_create is not None:
            steps.insert(0, ("create",))
        resets = [i for i, s in enumerate(steps) if s[0] in ("write_full", "remove")]
        staged: bytes | None = None  # final payload when the op itself fixes it
        staged_file: tuple[str, int] | None = None
        if resets:
            staged = self._payload_after_reset(steps[resets[-1] :])
            if staged is not None and len(staged) > self.inline_max:
                # Written and fsynced before taking any lock: not yet referenced.
                staged_file = lf.write_new_file(self.data_dir, staged, self.durable)
        return _Pending(oid, op, steps, bool(resets), staged, staged_file)

    def _take_batch(self) -> list[_Pending]:
        """Everything queued, one op per object (a file's in-place edit holds its flock
        until the commit); later ops on the same object wait for the next batch."""
        with self._queue_lock:
            batch: list[_Pending] = []
            rest: list[_Pending] = []
            oids: set[str] = set()
            for p in self._queue:
                (rest if p.oid in oids else batch).append(p)
                oids.add(p.oid)
            self._queue = rest
        return batch

    def _commit_batch(self) -> bool:
        """Commit everything queued (one op per object); False if nothing was queued."""
        batch = self._take_batch()
        if not batch:
            return False
        try:
            with self.conn() as c, self.exclusive():
                c.execute("BEGIN IMMEDIATE")  # guards are read under the write lock
                try:
                    for p in batch:
                        self._apply_one(c, p)
                    c.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        c.execute("ROLLBACK")
                    raise
        except BaseException as exc:
            for p in batch:
                p.error = p.error or exc
        for p in batch:
            try:
                self._settle(p)
            except OSError:  # best-effort file cleanup; the op's outcome is decided
                pass
            finally:
                p.done = True  # a waiter must never find its op neither queued nor done
        return True

    def _apply_one(self, c: sqlite3.Connection, p: _Pending) -> None:
        c.execute("SAVEPOINT op")
        try:
            self._apply(c, p.oid, p.op, p.steps, p.has_reset, p.staged, p.staged_file, p.cleanup)
        except Exception as exc:  # this op only: refused guards, missing objects, ...
            c.execute("ROLLBACK TO op")
            p.error = exc
        c.execute("RELEASE op")

    def _settle(self, p: _Pending) -> None:
        """After the batch: finish a committed op, or undo a failed one's files."""
        cleanup = p.cleanup
        if p.error is None:
            self._after_commit(cleanup)
            if p.staged_file is not None:
                os.close(p.staged_file[1])
        else:
            for fd in cleanup["fds"]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if cleanup.get("abort_unlink"):
                lf.discard_file(self.data_dir, cleanup["abort_unlink"])
            if p.staged_file is not None:
                lf.discard_file(self.data_dir, *p.staged_file)

    @staticmethod
    def _payload_after_reset(tail: list[tuple]) -> bytes | None:
        """Payload after the last write_full/remove (None: the object ends deleted)."""
        exists = tail[0][0] == "write_full"
        buf = bytearray(tail[0][1]) if exists else bytearray()
        for step in tail[1:]:
            kind = step[0]
            if kind in _DATA_STEPS and (exists or kind != "truncate"):
                lf.apply_in_memory(buf, step)
            if kind in _CREATING:
                exists = True
        return bytes(buf) if exists else None

    def _apply(
        self,
        c: sqlite3.Connection,
        oid: str,
        op: WriteOp,
        steps: list[tuple],
        has_reset: bool,
        staged: bytes | None,
        staged_file: tuple[str, int] | None,
        cleanup: dict,
    ) -> None:
        row = c.execute("SELECT version, size, file FROM objects WHERE oid=?", (oid,)).fetchone()
        existed = row is not None
        # 1. guards: nothing has been changed yet
        if op.exclusive_create and existed:
            raise ObjectExists(oid)
        if (op.must_exist or op.expected_version is not None or op.omap_guards) and not existed:
            raise ObjectNotFound(oid)
        if op.expected_version is not None and row[0] != op.expected_version:
            raise GuardFailed(f"{oid}: version {row[0]} != {op.expected_version}")
        for key, value, cmp in op.omap_guards:
            got = c.execute(
                "SELECT value FROM omap WHERE oid=? AND key=?", (oid, key.encode())
            ).fetchone()
            if not omap_guard_holds(None if got is None else bytes(got[0]), value, cmp):
                raise GuardFailed(f"{oid}: omap guard on {key!r} ({cmp.value}) failed")
        # 2. per-step preconditions (RADOS: ENOENT), still before touching any byte
        exists, removed, effective, data_steps = existed, False, False, []
        for step in steps:
            kind = step[0]
            if kind in _NEEDS_OBJECT and not exists:
                raise ObjectNotFound(oid)
            if kind == "truncate" and not exists:
                continue  # RADOS: truncating a missing object is a no-op
            effective = True
            if kind == "remove":
                exists, removed = False, True
            elif kind in _CREATING:
                exists = True
            if kind in _DATA_STEPS and not has_reset:
                data_steps.append(step)
        if not effective:
            return
        # 3. metadata steps, in order
        for step in steps:
            self._meta_step(c, oid, step)
        now = time.time()
        old_file = row[2] if existed else None
        if not exists:
            if existed:  # remember the version so a re-created object starts above it
                c.execute("DELETE FROM objects WHERE oid=?", (oid,))
                c.execute(
                    "INSERT INTO meta(k, v) VALUES('removed_hw', ?) "
                    "ON CONFLICT(k) DO UPDATE SET v=max(v, excluded.v)",
                    (row[0],),
                )
                cleanup["unlink"] = old_file
            return
        if existed and not removed:
            version = row[0] + 1
        else:
            hw = c.execute("SELECT v FROM meta WHERE k='removed_hw'").fetchone()
            version = max(hw[0] if hw else 0, row[0] if existed else 0) + 1
        # 4. data
        if has_reset:
            if staged_file is not None:
                new = (len(staged), staged_file[0], None)
            else:
                new = (len(staged), None, staged)
            cleanup["unlink"] = old_file
        elif data_steps and old_file is not None:
            size = self._in_place(old_file, row[1], data_steps, cleanup)
            new = (size, old_file, None)
        elif data_steps:
            buf = bytearray()
            if existed:
                cur = c.execute("SELECT inline FROM objects WHERE oid=?", (oid,)).fetchone()
                buf = bytearray(cur[0] or b"")
            for step in data_steps:
                lf.apply_in_memory(buf, step)
            if len(buf) > self.inline_max:
                name, fd = lf.write_new_file(self.data_dir, buf, self.durable)
                cleanup["fds"].append(fd)
                cleanup["abort_unlink"] = name
                new = (len(buf), name, None)
            else:
                new = (len(buf), None, bytes(buf))
        else:
            new = None
        if new is None and existed:
            c.execute("UPDATE objects SET version=?, mtime=? WHERE oid=?", (version, now, oid))
        else:
            size, file, inline = new if new is not None else (0, None, None)
            inline = inline or None
            c.execute(
                "INSERT INTO objects(oid, version, size, mtime, file, inline) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(oid) DO UPDATE SET "
                "version=excluded.version, size=excluded.size, mtime=excluded.mtime, "
                "file=excluded.file, inline=excluded.inline",
                (oid, version, size, now, file, inline),
            )

    @staticmethod
    def _meta_step(c: sqlite3.Connection, oid: str, step: tuple) -> None:
        kind = step[0]
        if kind == "remove":
            c.execute("DELETE FROM omap WHERE oid=?", (oid,))
            c.execute("DELETE FROM xattrs WHERE oid=?", (oid,))
        elif kind == "omap_set":
            c.executemany(
                "INSERT OR REPLACE INTO omap(oid, key, value) VALUES (?, ?, ?)",
                [(oid, k.encode(), v) for k, v in step[1].items()],
            )
        elif kind == "omap_rm":
            c.executemany(
                "DELETE FROM omap WHERE oid=? AND key=?", [(oid, k.encode()) for k in step[1]]
            )
        elif kind == "omap_clear":
            c.execute("DELETE FROM omap WHERE oid=?", (oid,))
        elif kind == "set_xattr":
            c.execute(
                "INSERT OR REPLACE INTO xattrs(oid, name, value) VALUES (?, ?, ?)",
                (oid, step[1], step[2]),
            )
        elif kind == "rm_xattr":
            c.execute("DELETE FROM xattrs WHERE oid=? AND name=?", (oid, step[1]))

    def _in_place(self, file: str, committed: int, data_steps: list[tuple], cleanup: dict) -> int:
        """Apply data steps to the current file under its exclusive flock (kept until
        after the commit, so readers never see bytes that disagree with the size)."""
        fd = os.open(lf.data_path(self.data_dir, file), os.O_RDWR | os.O_CLOEXEC)
        cleanup["fds"].append(fd)  # closed (lock released) after the commit or abort
        fcntl.flock(fd, fcntl.LOCK_EX)
        edit = lf.InPlaceFile(fd, committed)
        for step in data_steps:
            edit.apply(step)
        cleanup["trim"] = (fd, edit.finish(self.durable))
        return edit.logical

    def _after_commit(self, cleanup: dict) -> None:
        """Best effort: the op is committed; leftovers are garbage the next in-place
        edit trims or the next connect collects."""
        trim = cleanup.get("trim")
        if trim is not None and trim[1] is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(trim[0], trim[1])
        for fd in cleanup["fds"]:
            with contextlib.suppress(OSError):
                os.close(fd)
        if cleanup.get("unlink"):
            with contextlib.suppress(OSError):
                lf.discard_file(self.data_dir, cleanup["unlink"])
