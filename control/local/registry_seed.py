"""Fill a platform's registry and artifacts bucket with approved model versions, without training.

For the disaster-recovery drill's tests and benchmark: each version gets a real run folder (the
given TorchScript `model.pt`, `metadata.json`, `sample.json`), a run record and a registration
through the registry adapter, so its lineage, history and sha256 are what training would leave.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.domain.registry import Lineage, VersionStatus
from control.dr import Environment


def seed(
    endpoints: dict[str, Any],
    *,
    models: Sequence[str],
    versions: int,
    model_pt: bytes,
    feature_names: Sequence[str],
    classes: Sequence[Any],
    sample_rows: Sequence[Sequence[float]],
) -> int:
    """Register `versions` approved versions of each model; the number of versions registered."""
    platform = Environment(Path("endpoints.json"), endpoints)
    s3 = platform.aws("s3")
    registry = DynamoDbRegistry(platform.aws("dynamodb"), endpoints["registry_table"])
    bucket, data_bucket = endpoints["artifacts_bucket"], endpoints["data_bucket"]
    sha256 = hashlib.sha256(model_pt).hexdigest()
    sample = json.dumps({"instances": [list(row) for row in sample_rows]}).encode()
    count = 0
    for model in models:
        for number in range(1, versions + 1):
            now = datetime.now(UTC)
            run_id = f"{model}-v{number}-{hashlib.sha256(f'{model}{number}'.encode()).hexdigest()[:12]}"
            folder = f"models/{model}/runs/{run_id}/"
            metadata = {
                "model_name": model,
                "run_id": run_id,
                "feature_names": list(feature_names),
                "classes": list(classes),
                "artifact": "model.pt",
                "sha256": sha256,
                "metrics": {"val_accuracy": 0.9},
                "hyperparameters": {},
                "workers": 1,
                "framework": "pytorch+horovod",
                "sample_request": "sample.json",
            }
            s3.put_object(Bucket=bucket, Key=folder + "model.pt", Body=model_pt)
            s3.put_object(Bucket=bucket, Key=folder + "sample.json", Body=sample)
            s3.put_object(Bucket=bucket, Key=folder + "metadata.json", Body=json.dumps(metadata).encode())
            # part-0.csv without a manifest: staged data that starts no training run (docs/contracts.md)
            dataset_key = f"datasets/{model}/v{number}/part-0.csv"
            put = s3.put_object(Bucket=data_bucket, Key=dataset_key, Body=b"f0,label\n0.0,0\n")
            registry.put_run(run_id, {"model_name": model, "status": "REGISTERED", "model_version": number})
            lineage = Lineage(
                dataset_uri=f"s3://{data_bucket}/{dataset_key}",
                dataset_etag=put["ETag"].strip('"'),
                dataset_version_id=put.get("VersionId", ""),
                training_run_id=run_id,
                execution_arn=f"arn:aws:states:{endpoints['region']}:123456789012:execution:seeded:{run_id}",
                hyperparameters={},
                metrics={"val_accuracy": 0.9},
                artifact_uri=f"s3://{bucket}/{folder}model.pt",
                artifact_sha256=sha256,
                code_version="seeded",
                framework="pytorch+horovod",
                workers=1,
                trained_at=now.isoformat(),
                sample_request_uri=f"s3://{bucket}/{folder}sample.json",
            )
            version, _ = registry.register_version(model, lineage, actor="seed", now=now)
            registry.set_status(
                model, version.version, VersionStatus.APPROVED, actor="seed", reason="seeded", now=datetime.now(UTC)
            )
            count += 1
    return count
