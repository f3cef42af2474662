"""kill -9 (the process exits at a failpoint with status 137) during DELETE and
CompleteMultipartUpload, then restart + fsck + GC: nothing acknowledged is lost,
the interrupted request is wholly done or not at all, and no space leaks.

(PUT and overwrite crash points are in test_dedupe_engine.py.)"""

from __future__ import annotations

import os

import pytest

from tests.conftest import crash_points
from tests.test_dedupe_engine import DedupeGateway, _get

MiB = 1024 * 1024


def _gateway_with_bucket(kind: str, tmp_path) -> tuple[DedupeGateway, object]:
    d = DedupeGateway(kind, tmp_path)
    d.gw.start()
    s3 = d.gw.client()
    s3.create_bucket(Bucket="crash")
    return d, s3


def _upload_parts(s3, parts: list[bytes]) -> tuple[str, list[dict]]:
    """A multipart upload of "big" with these parts, not completed: (id, part list)."""
    up = s3.create_multipart_upload(Bucket="crash", Key="big")["UploadId"]
    done = [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket="crash", Key="big", UploadId=up,
                                                 PartNumber=n, Body=body)["ETag"]}
        for n, body in enumerate(parts, 1)
    ]
    return up, done


def _crash_then_recover(d: DedupeGateway, monkeypatch, point: str, request) -> None:
    """Restart armed at ``point``, run ``request`` (which must kill the process), restart."""
    d.gw.stop()
    monkeypatch.setenv("ATONIX_FAILPOINTS", f"{point}=exit")
    d.gw.start()
    monkeypatch.delenv("ATONIX_FAILPOINTS")
    with pytest.raises(Exception):  # noqa: B017 - the connection drops: any client error
        request(d.gw.client())
    assert d.gw.proc is not None and d.gw.proc.wait(timeout=30) == 137
    d.gw.proc = None
    d.gw.start()


def _repair_and_check_clean(d: DedupeGateway) -> None:
    d.cli("fsck", "--repair", "--stale-after", "0")
    d.gc_until_stable()
    report = d.cli("fsck")
    assert report["clean"] and report["orphan_manifests"] == [], report
    assert report["orphans"] == 0


@pytest.mark.parametrize(
    "backend_kind,point",
    crash_points("store.after_drop_ref", "engine.before_manifest_remove"),
    indirect=["backend_kind"],
)
def test_kill_mid_delete(backend_kind, tmp_path, point, monkeypatch):
    d, s3 = _gateway_with_bucket(backend_kind, tmp_path)
    kept, doomed = os.urandom(MiB), os.urandom(2 * MiB)
    s3.put_object(Bucket="crash", Key="kept", Body=kept)
    s3.put_object(Bucket="crash", Key="doomed", Body=doomed)
    # Shares some chunks with "doomed": dropping doomed's references must not touch these.
    s3.put_object(Bucket="crash", Key="sibling", Body=doomed[: MiB + 12345])

    _crash_then_recover(d, monkeypatch, point,
                        lambda c: c.delete_object(Bucket="crash", Key="doomed"))
    _repair_and_check_clean(d)
    s3 = d.gw.client()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="crash")["Contents"]}
    assert keys == {"kept", "sibling"}  # the entry went first: the delete happened
    assert _get(s3, "crash", "kept") == kept
    assert _get(s3, "crash", "sibling") == doomed[: MiB + 12345]
    s3.delete_object(Bucket="crash", Key="kept")
    s3.delete_object(Bucket="crash", Key="sibling")
    _repair_and_check_clean(d)
    assert d.chunk_ids() == set()  # everything reclaimed
    d.gw.stop()


@pytest.mark.parametrize(
    "backend_kind,point",
    crash_points("multipart.frozen", "multipart.committed"),
    indirect=["backend_kind"],
)
def test_kill_mid_complete_multipart(backend_kind, tmp_path, point, monkeypatch):
    d, s3 = _gateway_with_bucket(backend_kind, tmp_path)
    s3.put_object(Bucket="crash", Key="big", Body=b"old version " * 10_000)
    parts = [os.urandom(5 * MiB), os.urandom(MiB)]
    up, done = _upload_parts(s3, parts)
    # An unused third part: Complete must reclaim it.
    s3.upload_part(Bucket="crash", Key="big", UploadId=up, PartNumber=3, Body=os.urandom(MiB))

    def complete(c):
        c.complete_multipart_upload(Bucket="crash", Key="big", UploadId=up,
                                    MultipartUpload={"Parts": done})

    _crash_then_recover(d, monkeypatch, point, complete)
    s3 = d.gw.client()
    got = _get(s3, "crash", "big")
    if point == "multipart.frozen":
        assert got == b"old version " * 10_000  # not committed: the old object stands
    else:
        assert got == b"".join(parts)  # committed: the new object is whole
    complete(s3)  # the client's retry resumes the completion
    assert _get(s3, "crash", "big") == b"".join(parts)
    assert s3.list_multipart_uploads(Bucket="crash").get("Uploads", []) == []
    _repair_and_check_clean(d)
    assert _get(s3, "crash", "big") == b"".join(parts)
    s3.delete_object(Bucket="crash", Key="big")
    _repair_and_check_clean(d)
    assert d.chunk_ids() == set()
    d.gw.stop()


def test_a_resumed_complete_never_undoes_a_later_write(backend_kind, tmp_path, monkeypatch):
    """Complete commits, the process dies before finishing, a PUT then replaces the
    object (releasing the completed payload); the client's retried Complete must
    leave the PUT's object in place, not re-commit the released payload."""
    d, s3 = _gateway_with_bucket(backend_kind, tmp_path)
    parts = [os.urandom(5 * MiB), os.urandom(MiB)]
    up, done = _upload_parts(s3, parts)

    def complete(c):
        c.complete_multipart_upload(Bucket="crash", Key="big", UploadId=up,
                                    MultipartUpload={"Parts": done})

    _crash_then_recover(d, monkeypatch, "multipart.committed", complete)
    s3 = d.gw.client()
    later = os.urandom(2 * MiB)
    s3.put_object(Bucket="crash", Key="big", Body=later)  # releases the completed payload
    complete(s3)  # the retry
    assert _get(s3, "crash", "big") == later
    assert s3.list_multipart_uploads(Bucket="crash").get("Uploads", []) == []
    _repair_and_check_clean(d)
    assert _get(s3, "crash", "big") == later
    s3.delete_object(Bucket="crash", Key="big")
    _repair_and_check_clean(d)
    assert d.chunk_ids() == set()
    d.gw.stop()


def _versioned(s3) -> None:
    s3.put_bucket_versioning(Bucket="crash", VersioningConfiguration={"Status": "Enabled"})


@pytest.mark.parametrize(
    "backend_kind,point",
    crash_points("engine.before_index", "store.after_drop_ref"),
    indirect=["backend_kind"],
)
def test_kill_mid_versioned_write_or_version_delete(backend_kind, tmp_path, point, monkeypatch):
    """A versioned overwrite killed before its commit, or a version delete killed while
    releasing: every acknowledged version survives, and nothing is left for fsck."""
    d, s3 = _gateway_with_bucket(backend_kind, tmp_path)
    _versioned(s3)
    bodies = [os.urandom(MiB + i) for i in range(2)]
    ids = [s3.put_object(Bucket="crash", Key="k", Body=b)["VersionId"] for b in bodies]
    marker = s3.delete_object(Bucket="crash", Key="k")["VersionId"]  # a delete marker on top
    if point == "engine.before_index":
        request = lambda c: c.put_object(Bucket="crash", Key="k", Body=os.urandom(2 * MiB))  # noqa: E731
    else:
        request = lambda c: c.delete_object(Bucket="crash", Key="k", VersionId=ids[0])  # noqa: E731
    _crash_then_recover(d, monkeypatch, point, request)
    _repair_and_check_clean(d)
    s3 = d.gw.client()
    listed = s3.list_object_versions(Bucket="crash")
    versions = [v["VersionId"] for v in listed.get("Versions", [])]
    assert [m["VersionId"] for m in listed["DeleteMarkers"]] == [marker]
    if point == "engine.before_index":
        assert versions == ids[::-1]  # the interrupted write never happened
    else:
        assert versions == [ids[1]]  # the index change is the commit: that version went
    assert s3.get_object(Bucket="crash", Key="k", VersionId=ids[1])["Body"].read() == bodies[1]
    for vid in [*versions, marker]:
        s3.delete_object(Bucket="crash", Key="k", VersionId=vid)
    _repair_and_check_clean(d)
    assert d.chunk_ids() == set()  # everything reclaimed
    d.gw.stop()
