"""Reading the dataset from and writing the artifact to S3, through moto's server and AWS_ENDPOINT_URL."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from workloads.training.artifact import RunSummary, write_artifact
from workloads.training.data import DataError, load_dataset
from workloads.training.model import MLP, Normaliser, export_torchscript
from workloads.training.synthetic import synthetic_csv


def test_single_file_and_manifest_datasets_load_from_s3(s3):
    text = synthetic_csv(50, seed=5)
    s3.put_object(Bucket="data", Key="datasets/blobs/v1/data.csv", Body=text.encode())
    header, *rows = text.splitlines()
    for index, chunk in enumerate((rows[:20], rows[20:])):
        s3.put_object(Bucket="data", Key=f"datasets/blobs/v2/part-{index}.csv", Body="\n".join([header, *chunk]))
    s3.put_object(
        Bucket="data",
        Key="datasets/blobs/v2/_manifest.json",
        Body=json.dumps({"files": ["part-0.csv", "part-1.csv"]}),
    )
    single = load_dataset("s3://data/datasets/blobs/v1/")
    parts = load_dataset("s3://data/datasets/blobs/v2/_manifest.json")
    assert single.rows == parts.rows == 50
    assert single.labels.tolist() == parts.labels.tolist()


def test_missing_s3_objects_are_a_clear_error(s3):
    with pytest.raises(DataError, match=r"s3://data/datasets/none/v1: no data.csv or _manifest.json in this prefix"):
        load_dataset("s3://data/datasets/none/v1")
    with pytest.raises(DataError, match=r"s3://nobucket/x.csv: no such dataset file"):
        load_dataset("s3://nobucket/x.csv")


def test_artifact_lands_in_s3_with_its_sha256(s3):
    model_bytes = export_torchscript(Normaliser(torch.zeros(2), torch.ones(2)), MLP(2, 2, 4))
    summary = RunSummary("blobs", "run-1", ["a", "b"], [0, 1], {"epochs": 1}, 1, torch.__version__, "0.28.1")
    history = [
        {
            "epoch": 1,
            "train_loss": 0.5,
            "val_loss": 0.5,
            "val_accuracy": 0.5,
            "samples": 10.0,
            "epoch_seconds": 1.0,
        }
    ]
    write_artifact("s3://artifacts/models/blobs/runs/run-1/", model_bytes, summary, history)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="artifacts")["Contents"]]
    assert sorted(keys) == [f"models/blobs/runs/run-1/{name}" for name in ("metadata.json", "metrics.json", "model.pt")]
    stored = s3.get_object(Bucket="artifacts", Key="models/blobs/runs/run-1/model.pt")["Body"].read()
    metadata = json.loads(s3.get_object(Bucket="artifacts", Key="models/blobs/runs/run-1/metadata.json")["Body"].read())
    assert metadata["sha256"] == hashlib.sha256(stored).hexdigest()


def test_a_pinned_version_is_read_even_after_the_object_was_overwritten(s3):
    from workloads.training.storage import Storage

    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    key, uri = "datasets/blobs/v1/data.csv", "s3://versioned/datasets/blobs/v1/data.csv"
    try:
        first = s3.put_object(Bucket="versioned", Key=key, Body=synthetic_csv(30, seed=1).encode())["VersionId"]
        s3.put_object(Bucket="versioned", Key=key, Body=synthetic_csv(80, seed=2).encode())
        assert load_dataset(uri).rows == 80  # latest
        assert load_dataset(uri, Storage(pinned={uri: first})).rows == 30  # what the event named
    finally:
        for version in s3.list_object_versions(Bucket="versioned").get("Versions", []):
            s3.delete_object(Bucket="versioned", Key=version["Key"], VersionId=version["VersionId"])
        s3.delete_bucket(Bucket="versioned")
