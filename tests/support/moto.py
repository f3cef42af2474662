"""moto_server as a remote S3 endpoint for tests (a stand-in for AWS, never for us)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

from tests.support.gateway_process import free_port

MOTO_KEY, MOTO_SECRET = "motokey", "motosecret"


class MotoServer:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=MOTO_KEY,
                            aws_secret_access_key=MOTO_SECRET, region_name="us-east-1")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
