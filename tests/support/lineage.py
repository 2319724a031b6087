"""One builder for the lineage of a model version, and one registration of an approved version, for tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control.domain.registry import Lineage, VersionStatus
from control.ports import ModelRegistry
from tests.fakes import NOW


def lineage(
    model: str = "m",
    run_id: str = "r",
    *,
    accuracy: float = 0.9,
    data_bucket: str = "data",
    artifacts_bucket: str = "art",
    **overrides: Any,
) -> Lineage:
    """A valid lineage of `run_id` for `model`, with any field overridden (an invalid one raises)."""
    values: dict[str, Any] = {
        "dataset_uri": f"s3://{data_bucket}/datasets/{model}/v1/data.csv",
        "dataset_etag": "etag",
        "dataset_version_id": "vid",
        "training_run_id": run_id,
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:training:{run_id}",
        "hyperparameters": {"epochs": 2},
        "metrics": {"val_accuracy": accuracy, "val_loss": 0.3},
        "artifact_uri": f"s3://{artifacts_bucket}/models/{model}/runs/{run_id}/model.pt",
        "artifact_sha256": "ab" * 32,
        "code_version": "abc123",
    }
    return Lineage(**{**values, **overrides})


def register_approved(
    registry: ModelRegistry,
    model: str,
    run_id: str,
    *,
    actor: str,
    artifact_uri: str | None = None,
    artifact_sha256: str = "0" * 64,
    now: datetime = NOW,
) -> int:
    """Register a version of `model` trained by `run_id` (the minimal lineage) and approve it; its number."""
    version, _ = registry.register_version(
        model,
        Lineage(
            dataset_uri=f"s3://data/datasets/{model}/v1/data.csv",
            dataset_etag="e",
            dataset_version_id="v",
            training_run_id=run_id,
            execution_arn="arn",
            hyperparameters={},
            metrics={"val_accuracy": 0.9},
            artifact_uri=artifact_uri or f"s3://artifacts/models/{model}/{run_id}/model.pt",
            artifact_sha256=artifact_sha256,
            code_version="dev",
        ),
        actor=actor,
        now=now,
    )
    registry.set_status(model, version.version, VersionStatus.APPROVED, actor=actor, reason="", now=now)
    return int(version.version)
