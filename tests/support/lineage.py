"""One builder for the lineage of a model version, for tests that register versions."""

from __future__ import annotations

from typing import Any

from control.domain.registry import Lineage


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
