"""Builds a small training-run artifact as docs/contracts.md describes it ("Training job"):
model.pt (TorchScript, normalisation inside, raw rows in, class logits out) and metadata.json.

Independent of workloads/training on purpose: the server is tested against the contract, not
against one producer of it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASSES = (0, 1, 2)


class TinyClassifier(nn.Module):
    def __init__(self, n_features: int, n_classes: int, hidden: int = 16) -> None:
        super().__init__()
        # Frozen parameters rather than buffers: TorchScript and mypy both see a Tensor.
        self.mean = nn.Parameter(torch.linspace(-1.0, 1.0, n_features), requires_grad=False)
        self.std = nn.Parameter(torch.linspace(0.5, 2.0, n_features), requires_grad=False)
        self.layers = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x.to(torch.float32) - self.mean) / self.std)


def model_bytes(n_features: int = len(FEATURES), n_classes: int = len(CLASSES), seed: int = 0) -> bytes:
    torch.manual_seed(seed)
    scripted = torch.jit.script(TinyClassifier(n_features, n_classes).eval())
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def reference_logits(model_pt: bytes, rows: list[list[float]]) -> torch.Tensor:
    module = torch.jit.load(io.BytesIO(model_pt))
    with torch.inference_mode():
        return module(torch.tensor(rows, dtype=torch.float32))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata_for(model_pt: bytes, feature_names: tuple[str, ...], classes: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "model_name": "iris",
        "run_id": "iris-v1-0123456789ab",
        "feature_names": list(feature_names),
        "classes": list(classes),
        "artifact": "model.pt",
        "sha256": sha256_hex(model_pt),
        "metrics": {"train_loss": 0.1, "val_loss": 0.2, "val_accuracy": 0.95, "samples_per_second": 1e4, "epochs": 3},
        "hyperparameters": {"hidden_units": 16, "learning_rate": 0.01},
        "workers": 2,
        "framework": "pytorch+horovod",
        "torch_version": torch.__version__,
        "horovod_version": "0.28.1",
    }


@dataclass(frozen=True)
class Artifact:
    folder: Path
    model_pt: bytes
    metadata: dict[str, Any]

    @property
    def sha256(self) -> str:
        return sha256_hex(self.model_pt)

    def files(self) -> dict[str, bytes]:
        return {"model.pt": self.model_pt, "metadata.json": json.dumps(self.metadata).encode()}


def write_artifact(
    folder: Path,
    *,
    feature_names: tuple[str, ...] = FEATURES,
    classes: tuple[Any, ...] = CLASSES,
    seed: int = 0,
    model_pt: bytes | None = None,
    metadata_overrides: dict[str, Any] | None = None,
) -> Artifact:
    """Writes model.pt, then metadata.json (last, as the training job does)."""
    folder.mkdir(parents=True, exist_ok=True)
    model_pt = model_pt if model_pt is not None else model_bytes(len(feature_names), len(classes), seed)
    metadata = {**metadata_for(model_pt, feature_names, classes), **(metadata_overrides or {})}
    (folder / "model.pt").write_bytes(model_pt)
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return Artifact(folder, model_pt, metadata)
