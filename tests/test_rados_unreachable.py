"""An unreachable or misconfigured Ceph cluster fails fast with BackendUnavailable.

Needs python-rados but no running cluster, so it runs everywhere librados is
installed; CI (ATONIX_REQUIRE_RADOS=1) fails instead of skipping without it.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from storage import BackendUnavailable

if os.environ.get("ATONIX_REQUIRE_RADOS") == "1":
    import rados  # noqa: F401  # CI must have python-rados: fail loudly
else:
    pytest.importorskip("rados", reason="python-rados is not installed")

from storage.rados import RadosBackend


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def _conf(tmp_path, port: int) -> str:
    path = tmp_path / "ceph.conf"
    path.write_text(
        "[global]\n"
        f"mon host = [v1:127.0.0.1:{port}]\n"
        "auth cluster required = none\n"
        "auth service required = none\n"
        "auth client required = none\n"
        "ms bind ipv6 = false\n"
        f"log file = {tmp_path}/client.log\n"
        "admin socket =\n"
    )
    return str(path)


async def test_unreachable_cluster_fails_fast_with_default_timeout(tmp_path):
    backend = RadosBackend(_conf(tmp_path, _unused_port()))
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        await backend.connect()
    elapsed = time.monotonic() - start
    assert elapsed < 16, f"connect() took {elapsed:.1f} s"
    assert "127.0.0.1" in str(info.value)  # the message names the monitor it tried
    await backend.close()  # closing a never-connected backend is harmless


async def test_short_connect_timeout_is_honoured(tmp_path):
    backend = RadosBackend(_conf(tmp_path, _unused_port()), connect_timeout=2)
    start = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await backend.connect()
    assert time.monotonic() - start < 7


async def test_missing_conf_file(tmp_path):
    with pytest.raises(BackendUnavailable):
        await RadosBackend(str(tmp_path / "nope.conf"), connect_timeout=2).connect()


async def test_calls_before_connect_are_unavailable(tmp_path):
    backend = RadosBackend(_conf(tmp_path, _unused_port()))
    with pytest.raises(BackendUnavailable):
        await backend.ping()
    with pytest.raises(BackendUnavailable):
        await backend.pool("p").read("x")
