"""Model repository: fetch (path, file://, s3://), verify sha256, load, and say why not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from control.local.processes import free_port
from tests.support.inference_artifact import Artifact, model_bytes, write_artifact
from workloads.inference.errors import (
    ArtifactIntegrityError,
    ArtifactInvalid,
    ArtifactNotFound,
    ArtifactUnavailable,
)
from workloads.inference.repository import ModelRepository, load_with_retries, open_store

BUCKET = "mlcp-artifacts"
PREFIX = "models/iris/runs/iris-v1-0123456789ab/"


def load(uri: str, sha: str | None = None):
    return ModelRepository(open_store(uri), sha).load()


def test_loads_a_local_artifact_and_checks_the_registry_digest(artifact: Artifact) -> None:
    model = load(str(artifact.folder), artifact.sha256)
    assert model.feature_names == tuple(artifact.metadata["feature_names"])
    assert model.classes == (0, 1, 2)
    assert model.sha256 == artifact.sha256
    assert load(f"file://{artifact.folder}").n_features == 4


def test_a_digest_that_differs_from_the_registry_is_an_integrity_error(artifact: Artifact) -> None:
    with pytest.raises(ArtifactIntegrityError, match="the registry expects") as caught:
        load(str(artifact.folder), "0" * 64)
    assert not caught.value.retryable


def test_a_model_file_changed_after_the_run_is_an_integrity_error(artifact: Artifact) -> None:
    (artifact.folder / "model.pt").write_bytes(model_bytes(seed=1))  # metadata.json still has the old digest
    with pytest.raises(ArtifactIntegrityError, match="metadata.json records"):
        load(str(artifact.folder))


def test_a_corrupt_model_whose_digest_matches_is_invalid(tmp_path: Path) -> None:
    broken = write_artifact(tmp_path / "run", model_pt=b"PK\x03\x04 this is not TorchScript")
    with pytest.raises(ArtifactInvalid, match="not a loadable TorchScript model"):
        load(str(broken.folder), broken.sha256)


def test_a_model_that_disagrees_with_its_metadata_is_invalid(tmp_path: Path) -> None:
    four_classes = write_artifact(tmp_path / "run", model_pt=model_bytes(n_classes=4))
    with pytest.raises(ArtifactInvalid, match=r"expected \(2, 3\)"):
        load(str(four_classes.folder))


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"classes": [0, 1]}), "feature_names"),
        (json.dumps({"feature_names": ["a"], "classes": []}), "classes"),
        (json.dumps({"feature_names": ["a"], "classes": [0], "artifact": "../../etc/passwd"}), "unusable artifact"),
    ],
)
def test_bad_metadata_is_invalid(artifact: Artifact, metadata: str, match: str) -> None:
    (artifact.folder / "metadata.json").write_text(metadata)
    with pytest.raises(ArtifactInvalid, match=match):
        load(str(artifact.folder))


def test_a_missing_run_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound):
        load(str(tmp_path / "nothing-here"))
    with pytest.raises(ArtifactNotFound, match="unsupported model URI"):
        open_store("gs://bucket/run/")


def upload(artifact: Artifact, client) -> None:
    client.create_bucket(Bucket=BUCKET)
    for name, data in artifact.files().items():
        client.put_object(Bucket=BUCKET, Key=PREFIX + name, Body=data)


def test_loads_from_s3(artifact: Artifact) -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        upload(artifact, client)
        store = open_store(f"s3://{BUCKET}/{PREFIX.rstrip('/')}", s3_client_factory=lambda: client)
        model = ModelRepository(store, artifact.sha256).load()
        assert model.sha256 == artifact.sha256
        with pytest.raises(ArtifactNotFound, match="does not exist"):
            ModelRepository(open_store(f"s3://{BUCKET}/models/iris/runs/missing/", lambda: client)).load()


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield endpoint
    server.stop()


def test_the_default_s3_client_follows_aws_endpoint_url(artifact: Artifact, moto_endpoint: str) -> None:
    upload(artifact, boto3.client("s3", endpoint_url=moto_endpoint))
    model = load(f"s3://{BUCKET}/{PREFIX}", artifact.sha256)
    assert model.sha256 == artifact.sha256


class FlakyStore:
    location = "flaky://"

    def __init__(self, inner, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    def read(self, name: str) -> bytes:
        if self.failures:
            self.failures -= 1
            raise ArtifactUnavailable("storage hiccup")
        return self._inner.read(name)


def test_storage_hiccups_are_retried_with_backoff(artifact: Artifact) -> None:
    sleeps: list[float] = []
    store = FlakyStore(open_store(str(artifact.folder)), failures=2)
    model = load_with_retries(ModelRepository(store), attempts=5, backoff_s=0.5, sleep=sleeps.append)
    assert model.sha256 == artifact.sha256
    assert sleeps == [0.5, 1.0]


def test_retries_give_up_and_bad_artifacts_are_not_retried(artifact: Artifact) -> None:
    sleeps: list[float] = []
    with pytest.raises(ArtifactUnavailable):
        load_with_retries(
            ModelRepository(FlakyStore(open_store(str(artifact.folder)), failures=9)),
            attempts=3,
            backoff_s=0.1,
            sleep=sleeps.append,
        )
    assert len(sleeps) == 2
    sleeps.clear()
    with pytest.raises(ArtifactIntegrityError):
        load_with_retries(
            ModelRepository(open_store(str(artifact.folder)), "f" * 64), attempts=3, backoff_s=0.1, sleep=sleeps.append
        )
    assert sleeps == []
