"""Read tracking end to end, on both backends: GETs through boto3 to a gateway, its
counts flushed when it stops cleanly, and ``atonix-cli tier`` (40 days ahead through
ATONIX_CLOCK_OFFSET: the promotion window is 60 days) promoting a warm object back."""

from __future__ import annotations

import os

import pytest

from tests.conftest import backend_options
from tests.support.gateway_process import GatewayProcess, create_test_user
from tests.test_tiering import MiB, tier

POLICY = """\
tiers:
  hot: {}
  warm: {zstd_level: 9}
rules:
  - name: age
    transitions: [{days: 30, to: warm}]
    promote: {reads: 2, within: 60d}
"""


@pytest.fixture
def options(backend_kind, tmp_path):
    options = backend_options(backend_kind, tmp_path)
    (tmp_path / "tiering.yaml").write_text(POLICY)
    options["tiering"] = str(tmp_path / "tiering.yaml")
    create_test_user(options)
    return options


def test_gets_through_a_gateway_promote_a_warm_object(options, tmp_path):
    gw = GatewayProcess(options, tmp_path / "gw.log").start()
    s3 = gw.client()
    body = os.urandom(MiB)
    s3.create_bucket(Bucket="reads")
    s3.put_object(Bucket="reads", Key="k", Body=body)
    assert tier(options, "apply", "reads", days=40)["moved_objects"] == 1
    assert tier(options, "explain", "reads", "k", days=40)["data"] == {"warm": MiB}
    for _ in range(2):
        assert s3.get_object(Bucket="reads", Key="k")["Body"].read() == body
    s3.head_object(Bucket="reads", Key="k")  # a HEAD is no read
    gw.stop()  # a clean stop flushes what the gateway counted

    explained = tier(options, "explain", "reads", "k", days=40)
    assert explained["recent_reads"] == 2 and explained["last_read"] is not None
    assert (explained["belongs_on"], explained["why"]) == (
        "hot", "promoted: 2 reads in the promotion window (>= 2)"
    )
    assert tier(options, "apply", "reads", days=40)["moved_objects"] == 1
    assert tier(options, "explain", "reads", "k", days=40)["data"] == {"hot": MiB}
    # Once the reads have left the window, the object's age sends it back.
    assert tier(options, "plan", "reads", days=100)["moves"] == {
        "age: hot -> warm": {"objects": 1, "bytes": MiB}
    }
