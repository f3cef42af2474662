"""A throwaway Ceph cluster of its own for the tests that need more than the session's
one OSD (erasure-coded pools want k+m OSDs), started by ``scripts/dev-cluster``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CephCluster:
    """``with CephCluster(osds=3) as conf:``: the cluster's ceph.conf path."""

    def __init__(self, osds: int) -> None:
        self.osds = osds
        self.dir = Path(tempfile.mkdtemp(prefix="atonix-ceph-osds."))
        self.script = ROOT / "scripts" / "dev-cluster"

    def __enter__(self) -> str:
        # A second try on a fresh port and folder: one start on a loaded 2-core machine
        # must not fail the whole session's erasure-coded tests.
        failures = []
        for _ in range(2):
            failure = self._start()
            if failure is None:
                return str(self.dir / "ceph.conf")
            failures.append(failure)
            self.__exit__()
            self.dir.mkdir()
        raise RuntimeError("dev-cluster up failed twice:\n" + "\n---\n".join(failures))

    def _start(self) -> str | None:
        """Start the cluster; None when it is up, else what went wrong and the logs' tails."""
        env = dict(os.environ, CEPH_OSDS=str(self.osds), CEPH_MON_PORT=str(_free_port()),
                   CEPH_MEMSTORE_BYTES=str(2 << 30))
        done = subprocess.run([str(self.script), "up", str(self.dir)], env=env,
                              capture_output=True, text=True, timeout=240)
        if done.returncode == 0:
            return None
        tails = [f"{log.name}: {log.read_text(errors='replace')[-800:]}"
                 for log in sorted((self.dir / "log").glob("*.log"))]
        return "\n".join([done.stderr[-1500:], *tails])

    def __exit__(self, *exc) -> None:
        subprocess.run([str(self.script), "down", str(self.dir)], capture_output=True,
                       timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def require_ceph_binaries() -> None:
    """Skip (developer machine) or fail (CI) when Ceph's daemons are not installed."""
    if shutil.which("ceph-osd") and shutil.which("ceph-mon"):
        return
    if os.environ.get("ATONIX_REQUIRE_RADOS") == "1":
        pytest.fail("ATONIX_REQUIRE_RADOS=1 but ceph-mon/ceph-osd are not installed")
    pytest.skip("Ceph is not installed: scripts/install.sh --full installs it")
