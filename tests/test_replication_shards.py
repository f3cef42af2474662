"""Shipping shared out by change-log shard, on both backends: two gateways over one
deployment, a bucket whose index has split into several shards. Each gateway ships
the shards it holds leases on (about half each, seen in each gateway's own
metrics); when one is killed, the other takes its shards over once their leases
lapse and everything arrives."""

from __future__ import annotations

import signal
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import backend_options
from tests.support.gateway_process import GatewayProcess, create_test_user
from tests.support.replication import until, versions

RULES = {"Role": "arn:aws:iam::123456789012:role/replication", "Rules": [{
    "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
    "DeleteMarkerReplication": {"Status": "Enabled"},
    "Destination": {"Bucket": "arn:aws:s3:::copies"}}]}


def shipped(gw: GatewayProcess) -> float:
    """How many changes this gateway has shipped (its lag histogram's count)."""
    with urllib.request.urlopen(gw.endpoint + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text)
               if f.name == "atonix_replication_lag_seconds"
               for s in f.samples if s.name.endswith("_count"))


@pytest.fixture
def gateways(backend_kind, tmp_path):
    options = backend_options(backend_kind, tmp_path)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"replication_interval_seconds": 0.1,
                                      "replication_lease_seconds": 3,
                                      "index_split_threshold": 20}))
    options["config"] = str(config)
    create_test_user(options)
    one = GatewayProcess(options, tmp_path / "one.log").start()
    two = GatewayProcess(options, tmp_path / "two.log").start()
    yield one, two
    one.stop()
    two.stop()


def test_gateways_share_the_shards_and_take_over_a_dead_ones(gateways):
    one, two = gateways
    s3 = one.client()
    for name in ("originals", "copies"):
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket="originals", ReplicationConfiguration=RULES)
    for i in range(120):  # the index splits into several shards
        s3.put_object(Bucket="originals", Key=f"k{i:04d}", Body=b"x")
    assert until(lambda: len(versions(s3, "copies")) == 120, 60, every=0.2)
    # Both gateways take shards once they have seen each other (a second or two).
    assert until(lambda: (shipped(one) > 0 and shipped(two) > 0) or (
        s3.put_object(Bucket="originals", Key="nudge", Body=b"n") and False), 60, every=0.5)

    two.stop(signal.SIGKILL)
    for i in range(120, 200):
        s3.put_object(Bucket="originals", Key=f"k{i:04d}", Body=b"y")
    keys = {f"k{i:04d}" for i in range(200)}
    assert until(lambda: keys <= {v[0] for v in versions(s3, "copies")}, 90, every=0.5)
