"""Start real gateway processes (``atonix-cli serve``) for tests, and clients for them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

CLI = [sys.executable, "-m", "gateway.cli.main"]
TEST_ACCESS_KEY = "ATONIXTESTKEY0000001"
TEST_SECRET = "atonix-test-secret-000000000000000000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_args(options: dict) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        if value is not None:
            args += ["--" + name.replace("_", "-"), str(value)]
    return args


def run_cli(options: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*CLI, *args, *backend_args(options)], capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"atonix-cli {' '.join(args)} failed: {proc.stderr}")
    return proc


@dataclass
class GatewayProcess:
    """One ``atonix-cli serve`` child process on a free loopback port."""

    options: dict
    log_path: Path
    workers: int = 1
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        self.port = self.port or free_port()
        cmd = [
            *CLI, "serve", *backend_args(self.options), "--listen", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers), *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int | None = None) -> None:
        if self.proc is None:
            return
        if sig is None:
            self.proc.terminate()
        else:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def client(self, access_key: str = TEST_ACCESS_KEY, secret: str = TEST_SECRET, **config):
        cfg = Config(
            signature_version="s3v4",
            retries={"max_attempts": 1},
            s3={"addressing_style": config.pop("addressing_style", "path")},
            **config,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            config=cfg,
        )


def create_test_user(options: dict, uid: str = "tester", access_key=TEST_ACCESS_KEY,
                     secret=TEST_SECRET) -> dict:
    proc = run_cli(
        options, "user", "create", uid, "--display-name", uid.title(), "--email",
        f"{uid}@example.com", "--access-key", access_key, "--secret", secret,
    )
    return json.loads(proc.stdout)
