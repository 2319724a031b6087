from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from workloads.training.synthetic import synthetic_csv


@pytest.fixture
def blobs_csv(tmp_path: Path) -> Callable[..., Path]:
    """Writes a synthetic dataset as <tmp>/<name>/data.csv and returns the file's path."""

    def write(rows: int = 300, *, name: str = "dataset", seed: int = 0, classes: int = 3) -> Path:
        path = tmp_path / name / "data.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(synthetic_csv(rows, seed=seed, classes=classes))
        return path

    return write


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server on 127.0.0.1 and a free port (also reachable from subprocesses)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """An S3 client on moto with buckets `data` and `artifacts`; AWS_* env set for code under test."""
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    for bucket in ("data", "artifacts"):
        client.create_bucket(Bucket=bucket)
    yield client
    for bucket in ("data", "artifacts"):
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
