"""Build a backend from settings; the only place that knows every backend kind."""

from __future__ import annotations

from pathlib import Path

from storage.protocol import Backend


def open_backend(
    kind: str,
    *,
    data_dir: str | Path | None = None,
    ceph_conf: str | Path | None = None,
    max_in_flight: int = 512,
) -> Backend:
    """Return an unconnected backend of the given kind (call ``connect()`` next)."""
    if kind == "local":
        from storage.local import LocalBackend

        if data_dir is None:
            raise ValueError("the local backend needs a data directory")
        return LocalBackend(Path(data_dir))
    if kind == "rados":
        from storage.rados import RadosBackend

        if ceph_conf is None:
            raise ValueError("the rados backend needs a ceph.conf path")
        return RadosBackend(str(ceph_conf), max_in_flight=max_in_flight)
    raise ValueError(f"unknown backend kind {kind!r} (expected local or rados)")
