"""Gateways share nothing: two processes over one backend see each other's writes at once."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def test_read_and_list_after_write_across_gateways(two_gateways):
    a, b = (g.client() for g in two_gateways)
    name = "mg-" + uuid.uuid4().hex[:12]
    a.create_bucket(Bucket=name)
    assert name in [x["Name"] for x in b.list_buckets()["Buckets"]]
    for i in range(20):
        a.put_object(Bucket=name, Key=f"k{i:02d}", Body=b"v%d" % i)
        assert b.get_object(Bucket=name, Key=f"k{i:02d}")["Body"].read() == b"v%d" % i
        keys = [o["Key"] for o in b.list_objects_v2(Bucket=name)["Contents"]]
        assert keys[-1] == f"k{i:02d}" and len(keys) == i + 1
    b.put_object(Bucket=name, Key="k00", Body=b"overwritten by b")
    assert a.get_object(Bucket=name, Key="k00")["Body"].read() == b"overwritten by b"
    b.delete_object(Bucket=name, Key="k01")
    with pytest.raises(ClientError):
        a.head_object(Bucket=name, Key="k01")


def test_bucket_recreated_elsewhere_is_not_stale(two_gateways):
    """A's cached bucket record must not let it write into B's deleted-and-recreated bucket."""
    a, b = (g.client() for g in two_gateways)
    name = "mg-" + uuid.uuid4().hex[:12]
    a.create_bucket(Bucket=name)
    a.put_object(Bucket=name, Key="old", Body=b"1")  # A caches the bucket record
    a.delete_object(Bucket=name, Key="old")
    b.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        a.put_object(Bucket=name, Key="ghost", Body=b"x")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    b.create_bucket(Bucket=name)
    a.put_object(Bucket=name, Key="new", Body=b"2")
    assert [o["Key"] for o in b.list_objects_v2(Bucket=name)["Contents"]] == ["new"]


def test_racing_bucket_creates_make_one_bucket(two_gateways):
    import concurrent.futures

    clients = [g.client() for g in two_gateways] * 4
    name = "race-" + uuid.uuid4().hex[:12]

    def create(c):
        try:
            c.create_bucket(Bucket=name)
            return "ok"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, clients))
    # The owner creating its own bucket again is answered 200 (us-east-1, RGW): all succeed,
    # and there is one bucket.
    assert results == ["ok"] * len(clients)
    names = [b["Name"] for b in clients[0].list_buckets()["Buckets"]]
    assert names.count(name) == 1



def _code(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_stale_bucket_record_never_reaches_another_owners_bucket(two_gateways):
    """A's cached record of alice's deleted bucket must not let alice into bob's new one."""
    from tests.support.gateway_process import create_test_user

    ga, gb = two_gateways
    create_test_user(ga.options, "bob", "ATONIXBOBKEY00000001", "bob-secret-0000000000000000000000")
    alice_a, alice_b = ga.client(), gb.client()
    bob_b = gb.client("ATONIXBOBKEY00000001", "bob-secret-0000000000000000000000")
    name = "mg-" + uuid.uuid4().hex[:12]
    alice_a.create_bucket(Bucket=name)
    alice_a.put_object(Bucket=name, Key="mine", Body=b"alice")  # A caches alice's record
    alice_a.delete_object(Bucket=name, Key="mine")
    alice_b.delete_bucket(Bucket=name)
    bob_b.create_bucket(Bucket=name)
    bob_b.put_object(Bucket=name, Key="secret", Body=b"bob's data")

    refused = {"NoSuchBucket", "AccessDenied"}
    assert _code(lambda: alice_a.put_object(Bucket=name, Key="intruder", Body=b"x")) in refused
    assert _code(lambda: alice_a.get_object(Bucket=name, Key="secret")) in refused
    assert _code(lambda: alice_a.delete_object(Bucket=name, Key="secret")) in refused
    assert _code(lambda: alice_a.list_objects_v2(Bucket=name)) in refused
    assert _code(lambda: alice_a.create_multipart_upload(Bucket=name, Key="mp")) in refused
    assert _code(lambda: alice_a.delete_bucket(Bucket=name)) in refused

    listing = bob_b.list_objects_v2(Bucket=name)
    assert [o["Key"] for o in listing["Contents"]] == ["secret"]
    assert bob_b.get_object(Bucket=name, Key="secret")["Body"].read() == b"bob's data"
    assert bob_b.list_multipart_uploads(Bucket=name).get("Uploads", []) == []


def test_head_bucket_sees_a_delete_made_on_another_gateway(two_gateways):
    a, b = (g.client() for g in two_gateways)
    name = "mg-" + uuid.uuid4().hex[:12]
    a.create_bucket(Bucket=name)
    a.head_bucket(Bucket=name)  # A caches the record
    b.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        a.head_bucket(Bucket=name)
    assert e.value.response["Error"]["Code"] in ("404", "NoSuchBucket")
    assert _code(lambda: a.get_bucket_location(Bucket=name)) == "NoSuchBucket"


def test_removed_key_is_refused_by_every_gateway(two_gateways):
    """Keys are cached per process for KEY_CACHE_SECONDS at most, then re-read."""
    import time

    from engine.iam import KEY_CACHE_SECONDS
    from tests.support.gateway_process import run_cli

    ga = two_gateways[0]
    key, secret = "ATONIXGONE" + uuid.uuid4().hex[:10].upper(), "gone-" + uuid.uuid4().hex
    run_cli(ga.options, "user", "create", "carol", "--display-name", "Carol",
            "--access-key", key, "--secret", secret)
    clients = [g.client(key, secret) for g in two_gateways]
    for c in clients:
        c.list_buckets()  # both gateways now cache the key
    run_cli(ga.options, "user", "key-remove", "carol", key)
    removed_at = time.monotonic()
    for c in clients:
        while True:
            # When the request was sent, not when its answer came: a slow answer on a
            # loaded machine must not count as the key living too long.
            sent_at = time.monotonic()
            try:
                c.list_buckets()
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InvalidAccessKeyId"
                break
            assert sent_at - removed_at < KEY_CACHE_SECONDS + 3, "removed key still works"
            time.sleep(0.2)


def test_a_put_in_flight_never_lands_in_a_bucket_recreated_by_another_owner(two_gateways):
    """Access was decided for alice's bucket; while her body streams, the bucket is
    deleted and bob re-creates the name, and gateway A's cache learns bob's record.
    Her PUT must fail, not land in bob's bucket."""
    import concurrent.futures
    import http.client
    import threading
    import urllib.parse

    from tests.support.gateway_process import create_test_user

    ga, gb = two_gateways
    bob_key, bob_secret = "ATONIXBOBKEY00000002", "bob-secret-1111111111111111111111"
    create_test_user(ga.options, "bob", bob_key, bob_secret)
    alice_a, alice_b = ga.client(), gb.client()
    bob_a, bob_b = ga.client(bob_key, bob_secret), gb.client(bob_key, bob_secret)
    name = "mg-" + uuid.uuid4().hex[:12]
    alice_a.create_bucket(Bucket=name)
    url = urllib.parse.urlsplit(alice_a.generate_presigned_url(
        "put_object", Params={"Bucket": name, "Key": "intruder"}, ExpiresIn=600))
    halfway, resume = threading.Event(), threading.Event()
    piece, pieces = b"x" * 65536, 32

    def body():
        for i in range(pieces):
            if i == pieces // 2:
                halfway.set()
                assert resume.wait(60)
            yield piece

    def put() -> int:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request("PUT", f"{url.path}?{url.query}", body=body(),
                     headers={"Content-Length": str(len(piece) * pieces)})
        return conn.getresponse().status

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        status = pool.submit(put)
        assert halfway.wait(30)
        alice_b.delete_bucket(Bucket=name)
        bob_b.create_bucket(Bucket=name)
        bob_a.head_bucket(Bucket=name)  # gateway A now caches bob's record
        resume.set()
        assert status.result(timeout=60) == 404  # NoSuchBucket: alice's bucket is gone
    assert bob_b.list_objects_v2(Bucket=name).get("Contents", []) == []
