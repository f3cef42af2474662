"""What the replication tests share: a region (a deployment with its own data and its
gateway), replication rules, waiting for a condition, and a bucket's versions as boto3
lists them."""

from __future__ import annotations

import time

import yaml

from tests.conftest import backend_options
from tests.support.gateway_process import (
    TEST_ACCESS_KEY,
    TEST_SECRET,
    GatewayProcess,
    create_test_user,
)


def until(check, timeout: float, every: float = 0.1):
    """``check()`` once it is truthy, or its last value when ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)


def versions(s3, bucket: str) -> list[tuple]:
    """(key, version id, ETag or "marker", is latest) of every version, sorted."""
    listed = s3.list_object_versions(Bucket=bucket)
    out = [(v["Key"], v["VersionId"], v["ETag"], v["IsLatest"]) for v in listed.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], "marker", m["IsLatest"])
            for m in listed.get("DeleteMarkers", [])]
    return sorted(out)


def rules(destination: str) -> dict:
    """A ReplicationConfiguration shipping every key (delete markers too) to ``destination``."""
    return {"Role": "arn:aws:iam::123456789012:role/replication", "Rules": [{
        "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": destination}}]}


class Region:
    """A deployment of its own (a data folder or pool prefix) and its gateway, which ships
    to ``peer`` at ``peer_port``; ``settings``: more of its config file."""

    def __init__(self, name: str, kind: str, tmp_path, port: int, peer: str, peer_port: int,
                 peer_settings: dict | None = None, **settings):
        self.name = name
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.options = backend_options(kind, self.dir)
        config = self.dir / "gateway.yaml"
        config.write_text(yaml.safe_dump({
            "replication_interval_seconds": 0.1,
            "regions": {peer: {"endpoints": [f"http://127.0.0.1:{peer_port}"],
                               "access_key": TEST_ACCESS_KEY, "secret_key": TEST_SECRET,
                               **(peer_settings or {})}},
            **settings,
        }))
        self.options["config"] = str(config)
        create_test_user(self.options)
        self.port = port
        self.gw: GatewayProcess | None = None

    def start(self) -> Region:
        self.gw = GatewayProcess(self.options, self.dir / "gw.log", port=self.port).start()
        return self

    def stop(self, sig=None) -> None:
        if self.gw is not None:
            self.gw.stop(sig)
            self.gw = None

    def s3(self):
        assert self.gw is not None
        return self.gw.client()


def paired(east: Region, west: Region, source: str = "photos", copy: str = "photos-dr") -> None:
    """Versioned ``source`` in east shipping every key to versioned ``copy`` in west."""
    for region, bucket in ((east, source), (west, copy)):
        s3 = region.s3()
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    east.s3().put_bucket_replication(
        Bucket=source, ReplicationConfiguration=rules(f"arn:aws:s3:{west.name}::{copy}"))
