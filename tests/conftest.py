"""Shared fixtures: backends (local, rados) and running gateway processes.

The rados variants need the throwaway cluster started by ``scripts/dev-cluster``;
its ceph.conf path comes from ATONIX_CEPH_CONF. When ATONIX_REQUIRE_RADOS=1
(CI sets it) a missing cluster is an error, never a silent skip.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.ceph_cluster import CephCluster, require_ceph_binaries
from tests.support.gateway_process import GatewayProcess, create_test_user

BACKEND_KINDS = ["local", "rados"]


def ceph_conf() -> str | None:
    conf = os.environ.get("ATONIX_CEPH_CONF")
    if conf and os.path.exists(conf):
        return conf
    return None


def require_backend(kind: str) -> None:
    """Skip (developer machine) or fail (CI) when the rados cluster is absent."""
    if kind != "rados" or ceph_conf():
        return
    if os.environ.get("ATONIX_REQUIRE_RADOS") == "1":
        pytest.fail("ATONIX_REQUIRE_RADOS=1 but no Ceph cluster (ATONIX_CEPH_CONF) is running")
    pytest.skip("no Ceph cluster: start one with scripts/dev-cluster up")


def backend_options(kind: str, tmp_path) -> dict:
    """CLI/config options that select a fresh, isolated namespace on the backend."""
    if kind == "local":
        return {"backend": "local", "data_dir": str(tmp_path / "data")}
    return {
        "backend": "rados",
        "ceph_conf": ceph_conf(),
        "pool_prefix": "t" + uuid.uuid4().hex[:10],
    }


@pytest.fixture(scope="session")
def three_osd_ceph():
    """The ceph.conf of a three-OSD cluster of the session's own (erasure-coded pools
    want k+m OSDs; the shared cluster has one), started on first use."""
    require_ceph_binaries()
    with CephCluster(osds=3) as conf:
        yield conf


def crash_points(*points: str) -> list:
    """(backend kind, crash point) pairs for ``parametrize(..., indirect=["backend_kind"])``:
    each point once, the backends taking turns (RADOS first). What a crash point
    tests is the engine's write ordering, the same over both backends (whose own
    atomicity the contract suite checks); each backend still meets half the points."""
    kinds = ("rados", "local")
    return [pytest.param(kinds[i % 2], point, id=f"{kinds[i % 2]}-{point}")
            for i, point in enumerate(points)]


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request) -> str:
    require_backend(request.param)
    return request.param


@pytest.fixture(scope="session", params=BACKEND_KINDS)
def gateway(request, tmp_path_factory):
    """A real ``atonix-cli serve`` process per backend, shared by the session's tests."""
    require_backend(request.param)
    tmp = tmp_path_factory.mktemp(f"gw-{request.param}")
    options = backend_options(request.param, tmp)
    create_test_user(options)
    gw = GatewayProcess(options, tmp / "gateway.log").start()
    yield gw
    gw.stop()


@pytest.fixture(params=BACKEND_KINDS)
def two_gateways(request, tmp_path):
    """Two gateway processes over one backend: the multi-gateway deployment in small."""
    require_backend(request.param)
    options = backend_options(request.param, tmp_path)
    create_test_user(options)
    a = GatewayProcess(options, tmp_path / "a.log").start()
    b = GatewayProcess(options, tmp_path / "b.log").start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def s3(gateway):
    return gateway.client()


def empty_and_delete(client, name: str) -> None:
    """Remove every version and delete marker (a bucket ever versioned keeps them), then
    the bucket."""
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
        client.delete_bucket(Bucket=name)
    except client.exceptions.NoSuchBucket:
        pass


@pytest.fixture
def bucket(s3):
    name = "t-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete(s3, name)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """One moto_server for the session: the remote S3 endpoint of cold tiers."""
    from tests.support.moto import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()
