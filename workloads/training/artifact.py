"""Writes the run's artifact under the output URI (docs/contracts.md, "Training job").

Order matters: `model.pt`, then `metrics.json` and `sample.json`, then `metadata.json`, whose
presence marks the run complete — a reader that sees metadata.json can trust the others and the sha256.

`sample.json` is a small request the model server accepts (a few held-out rows as
`{"instances": [[...], ...]}`); a rollout sends it to the preview of this version as analysis traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workloads.training.model import sha256_hex
from workloads.training.storage import Storage, join

MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
METADATA_FILE = "metadata.json"
SAMPLE_FILE = "sample.json"
SAMPLE_CONTENT_TYPE = "application/json"
SAMPLE_ROWS = 4
FRAMEWORK = "pytorch+horovod"


@dataclass(frozen=True)
class RunSummary:
    model_name: str
    run_id: str
    feature_names: list[str]
    classes: list[int]
    hyperparameters: dict[str, Any]
    workers: int
    torch_version: str
    horovod_version: str


def final_metrics(history: list[dict[str, float]]) -> dict[str, float | int]:
    """The contract's metrics: the last epoch's losses/accuracy, throughput over all epochs."""
    last = history[-1]
    seconds = sum(record["epoch_seconds"] for record in history)
    samples = sum(record["samples"] for record in history)
    return {
        "train_loss": last["train_loss"],
        "val_loss": last["val_loss"],
        "val_accuracy": last["val_accuracy"],
        "samples_per_second": samples / seconds if seconds > 0 else 0.0,
        "epochs": int(last["epoch"]),
    }


def build_metadata(summary: RunSummary, sha256: str, metrics: dict[str, float | int]) -> dict[str, Any]:
    return {
        "model_name": summary.model_name,
        "run_id": summary.run_id,
        "feature_names": summary.feature_names,
        "classes": summary.classes,
        "artifact": MODEL_FILE,
        "sha256": sha256,
        "metrics": metrics,
        "hyperparameters": summary.hyperparameters,
        "workers": summary.workers,
        "framework": FRAMEWORK,
        "torch_version": summary.torch_version,
        "horovod_version": summary.horovod_version,
    }


def write_artifact(
    output_uri: str,
    model_bytes: bytes,
    summary: RunSummary,
    history: list[dict[str, float]],
    storage: Storage | None = None,
    sample_rows: list[list[float]] | None = None,
) -> dict[str, Any]:
    """Writes model.pt, metrics.json, sample.json (with `sample_rows`) and, last, metadata.json;
    returns the metadata."""
    storage = storage or Storage()
    metrics = final_metrics(history)
    metadata = build_metadata(summary, sha256_hex(model_bytes), metrics)
    if sample_rows:
        metadata.update(sample_request=SAMPLE_FILE, sample_content_type=SAMPLE_CONTENT_TYPE)
    storage.write_bytes(join(output_uri, MODEL_FILE), model_bytes)
    storage.write_bytes(
        join(output_uri, METRICS_FILE),
        _json({**metrics, "history": history}),
        content_type="application/json",
    )
    if sample_rows:
        storage.write_bytes(
            join(output_uri, SAMPLE_FILE), sample_request(sample_rows), content_type=SAMPLE_CONTENT_TYPE
        )
    storage.write_bytes(join(output_uri, METADATA_FILE), _json(metadata), content_type="application/json")
    return metadata


def sample_request(rows: list[list[float]]) -> bytes:
    """The model server's JSON input (docs/contracts.md, "Model server")."""
    return (json.dumps({"instances": [[float(value) for value in row] for row in rows]}) + "\n").encode()


def _json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
