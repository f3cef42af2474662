"""Benchmark targets: the systems measured side by side in one run.

- ``atonix-local``: our gateway on the embedded backend;
- ``atonix-rados``: our gateway on the Ceph cluster;
- ``rgw``: Ceph's own S3 gateway (radosgw, beast frontend with tcp_nodelay) on
  the same cluster;
- ``moto``: moto_server, the in-memory AWS stand-in;
- ``calibration``: a trivial aiohttp server answering every request at once,
  which shows the load generator's own ceiling.

Each target is started and stopped by the suite itself; its server processes
are known so their CPU use can be reported.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

ACCESS_KEY = "BENCHACCESSKEY000001"
SECRET = "bench-secret-00000000000000000000000000"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, ok=(200, 403, 404)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Target:
    name: str
    endpoint: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    workdir: Path | None = None
    access_key: str = ACCESS_KEY
    secret: str = SECRET
    pool_prefix: str | None = None  # an atonix target on Ceph: its pools' prefix

    def pids(self) -> list[int]:
        """Server processes whose CPU counts against this target (children included)."""
        out: list[int] = []
        for p in self.procs:
            try:
                proc = psutil.Process(p.pid)
                out += [proc.pid] + [c.pid for c in proc.children(recursive=True)]
            except psutil.Error:
                pass
        return out

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env or os.environ)


def start_atonix(backend: str, workers: int, ceph_conf: str | None = None,
                 config: dict | None = None, port: int | None = None) -> Target:
    """``config``: settings for the gateway's --config file; ``port``: chosen beforehand
    (a peer's configuration names it)."""
    work = Path(tempfile.mkdtemp(prefix=f"atonix-bench-{backend}-"))
    opts = ["--backend", backend]
    if config:
        (work / "gateway.yaml").write_text(yaml.safe_dump(config))
        opts += ["--config", str(work / "gateway.yaml")]
    if backend == "local":
        opts += ["--data-dir", str(work / "data")]
    else:
        prefix = "bench" + uuid.uuid4().hex[:8]  # (one per target: a run starts several)
        opts += ["--ceph-conf", str(ceph_conf), "--pool-prefix", prefix]
    cli = [sys.executable, "-m", "gateway.cli.main"]
    subprocess.run(
        [*cli, "user", "create", "bench", "--display-name", "Bench", "--access-key",
         ACCESS_KEY, "--secret", SECRET, *opts],
        check=True, capture_output=True,
    )
    port = port or free_port()
    proc = _spawn(
        [*cli, "serve", *opts, "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"],
        work / "gateway.log",
    )
    target = Target(f"atonix-{backend}", f"http://127.0.0.1:{port}", [proc], work,
                    pool_prefix=prefix if backend != "local" else None)
    wait_http(target.endpoint + "/health")
    return target


def start_rgw(ceph_conf: str) -> Target:
    """radosgw on the same cluster, as ENVIRONMENT.md describes (beast, tcp_nodelay=1)."""
    work = Path(tempfile.mkdtemp(prefix="atonix-bench-rgw-"))
    port = free_port()
    admin = ["radosgw-admin", "-c", ceph_conf]
    proc = _spawn(
        ["radosgw", "-c", ceph_conf, "-n", "client.rgw.a", "-f",
         f"--rgw_frontends=beast endpoint=127.0.0.1:{port} tcp_nodelay=1",
         "--rgw_enable_usage_log=false", "--rgw_enable_ops_log=false",
         "--debug_rgw=0", "--debug_ms=0", f"--log_file={work / 'rgw.log'}",
         f"--admin_socket={work / 'rgw.asok'}", f"--rgw_data={work}"],
        work / "rgw.out",
    )
    target = Target("rgw", f"http://127.0.0.1:{port}", [proc], work)
    try:
        wait_http(target.endpoint + "/", timeout=120)
        subprocess.run(
            [*admin, "user", "create", "--uid", "bench", "--display-name", "Bench",
             "--access-key", ACCESS_KEY, "--secret", SECRET],
            capture_output=True, timeout=120,
        )
    except Exception:
        target.stop()
        raise
    return target


def start_moto() -> Target:
    work = Path(tempfile.mkdtemp(prefix="atonix-bench-moto-"))
    port = free_port()
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = _spawn([exe, "-H", "127.0.0.1", "-p", str(port)], work / "moto.log")
    target = Target("moto", f"http://127.0.0.1:{port}", [proc], work)
    wait_http(target.endpoint + "/", timeout=60)
    return target


def start_calibration() -> Target:
    work = Path(tempfile.mkdtemp(prefix="atonix-bench-cal-"))
    port = free_port()
    proc = _spawn([sys.executable, "-m", "benchmarks.calibration", str(port)], work / "cal.log")
    target = Target("calibration", f"http://127.0.0.1:{port}", [proc], work)
    wait_http(target.endpoint + "/")
    return target
