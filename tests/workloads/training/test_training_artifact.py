from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import torch

from workloads.training.artifact import RunSummary, write_artifact
from workloads.training.model import MLP, Normaliser, export_torchscript
from workloads.training.storage import Storage
from workloads.training.synthetic import make_blobs

HISTORY = [
    {
        "epoch": 1,
        "train_loss": 0.9,
        "train_accuracy": 0.6,
        "val_loss": 0.8,
        "val_accuracy": 0.7,
        "samples": 100.0,
        "epoch_seconds": 0.5,
        "samples_per_second": 200.0,
        "steps": 2.0,
    },
    {
        "epoch": 2,
        "train_loss": 0.5,
        "train_accuracy": 0.8,
        "val_loss": 0.4,
        "val_accuracy": 0.9,
        "samples": 100.0,
        "epoch_seconds": 0.25,
        "samples_per_second": 400.0,
        "steps": 2.0,
    },
]
SUMMARY = RunSummary(
    model_name="blobs",
    run_id="run-1",
    feature_names=[f"f{i}" for i in range(8)],
    classes=[0, 1, 2],
    hyperparameters={"epochs": 2, "batch_size": 32},
    workers=2,
    torch_version=torch.__version__,
    horovod_version="0.28.1",
)


def exported() -> tuple[bytes, Normaliser, MLP, np.ndarray]:
    features, _ = make_blobs(200, seed=4)
    torch.manual_seed(0)
    normaliser, mlp = Normaliser.fit(features.astype(np.float32)), MLP(8, 3, 16)
    return export_torchscript(normaliser, mlp), normaliser, mlp, features


def test_the_exported_model_takes_raw_rows_and_normalises_inside():
    model_bytes, normaliser, mlp, features = exported()
    loaded = torch.jit.load(io.BytesIO(model_bytes))
    raw = torch.from_numpy(features[:5])  # float64 raw rows, as a server would get them
    expected = mlp((raw.float() - normaliser.mean) / normaliser.std)
    torch.testing.assert_close(loaded(raw), expected)
    assert loaded(raw).shape == (5, 3)
    # Without the normalisation the (large-scale) raw features would give other logits.
    assert not torch.allclose(mlp(raw.float()), expected)
    assert torch.allclose(loaded.normaliser.mean, torch.from_numpy(features.astype(np.float32).mean(0)), rtol=1e-4)


def test_export_is_reproducible():
    assert exported()[0] == exported()[0]


def test_artifact_files_come_in_order_with_metadata_last_and_a_matching_sha(tmp_path):
    model_bytes = exported()[0]
    written: list[str] = []

    class RecordingStorage(Storage):
        def write_bytes(self, uri, data, content_type="application/octet-stream"):
            written.append(uri.rsplit("/", 1)[-1])
            super().write_bytes(uri, data, content_type)

    out = tmp_path / "runs" / "run-1"
    metadata = write_artifact(str(out), model_bytes, SUMMARY, HISTORY, storage=RecordingStorage())
    assert written == ["model.pt", "metrics.json", "metadata.json"]
    written.clear()
    with_sample = write_artifact(
        str(tmp_path / "with-sample"), model_bytes, SUMMARY, HISTORY, storage=RecordingStorage(),
        sample_rows=[[1.0, 2.0], [3.0, 4.5]],
    )  # fmt: skip
    assert written == ["model.pt", "metrics.json", "sample.json", "metadata.json"]
    assert (with_sample["sample_request"], with_sample["sample_content_type"]) == ("sample.json", "application/json")
    assert json.loads((tmp_path / "with-sample" / "sample.json").read_text()) == {"instances": [[1, 2], [3, 4.5]]}
    on_disk = json.loads((out / "metadata.json").read_text())
    assert on_disk == metadata
    assert on_disk["sha256"] == hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()
    assert set(on_disk) == {
        "model_name",
        "run_id",
        "feature_names",
        "classes",
        "artifact",
        "sha256",
        "metrics",
        "hyperparameters",
        "workers",
        "framework",
        "torch_version",
        "horovod_version",
    }
    assert on_disk["artifact"] == "model.pt" and on_disk["framework"] == "pytorch+horovod"
    assert on_disk["metrics"] == {
        "train_loss": 0.5,
        "val_loss": 0.4,
        "val_accuracy": 0.9,
        "samples_per_second": 200 / 0.75,
        "epochs": 2,
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"] == HISTORY and metrics["val_accuracy"] == 0.9
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
