"""Shared pieces of the real-client matrix: payloads, names, tools, cleanup, log capture.

Every test here drives a real third-party S3 client against the session ``gateway``
fixture (one ``atonix-cli serve`` per backend). A missing client is a failure, never a
skip: the install script (``scripts/install.sh --full``) provides all of them.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

MiB = 1024 * 1024
# No client step here takes more than seconds; a hung one must not eat CI's budget.
TEST_TIMEOUT = 240
CLIENT_READ_TIMEOUT = 60
PART_SIZE = 5 * MiB
# Three parts of 5, 5 and 2 MiB: multipart on every client, yet quick on both backends.
MULTIPART_SIZE = 12 * MiB

# Variables of the machine that real clients must not see (rclone rejects a CA bundle
# on plain http; a profile would point the AWS tools at someone else's settings).
_CLIENT_ENV_DROP = (
    "AWS_CA_BUNDLE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def payload(size: int, seed: str) -> bytes:
    """Deterministic incompressible bytes, so a mismatch is reproducible."""
    return random.Random(seed).randbytes(size)


def unique_bucket(client: str) -> str:
    return f"{client}-{uuid.uuid4().hex[:12]}"


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV_DROP}
    env.update(
        AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=TEST_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    env.update(extra)
    return env


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/install.sh --full")
    return path


def run_tool(cmd: list[str], env: dict[str, str], ok=(0,), timeout: float = 120,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd
    )
    assert proc.returncode in ok, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
    return proc


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }


def purge_bucket(client, name: str) -> None:
    """Remove a test bucket whatever a failed client left in it (uploads included)."""
    try:
        uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        for up in uploads:
            client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    except Exception:  # multipart may not be there yet; the objects still go below
        pass
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=obj["Key"])
        client.delete_bucket(Bucket=name)
    except client.exceptions.NoSuchBucket:
        pass


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


@pytest.fixture
def boto(gateway):
    """A boto3 client for set-up and independent checks of what the client under test did."""
    return gateway.client()


@pytest.fixture
def bucket_name(request, boto):
    """A fresh bucket name, not created: the client under test creates it itself."""
    name = unique_bucket(request.module.__name__.rsplit("_", 1)[-1])
    yield name
    purge_bucket(boto, name)


@pytest.fixture
def made_bucket(boto, bucket_name):
    """A bucket created with boto3, for clients whose own create is not under test."""
    boto.create_bucket(Bucket=bucket_name)
    return bucket_name


@pytest.fixture(autouse=True)
def _gateway_log_mark(request):
    """Remember where the gateway log stood when this test started (see the hook below)."""
    if "gateway" in request.fixturenames:
        log_path = Path(request.getfixturevalue("gateway").log_path)
        start = log_path.stat().st_size if log_path.exists() else 0
        request.node.gateway_log_mark = (log_path, start)
    yield


def _gateway_errors_since(mark: tuple[Path, int]) -> str:
    log_path, start = mark
    with open(log_path, "rb") as log:
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()
    interesting = [ln for ln in lines if _is_error_line(ln)]
    return "\n".join(interesting[-60:]) or "(none logged)"


def _is_error_line(line: str) -> bool:
    words = line.split()
    status = any(len(w) == 3 and w.isdigit() and w[0] in "45" for w in words)
    return status or "Traceback" in line or "Error" in line


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the gateway's 4xx/5xx access-log lines of this test.

    The access log names operation and status; with the client's own error this pins
    the failing request without rerunning anything.
    """
    report = yield
    mark = getattr(item, "gateway_log_mark", None)
    if report.when == "call" and report.failed and mark and mark[0].exists():
        report.sections.append(("gateway errors", _gateway_errors_since(mark)))
    return report
