"""Real `horovodrun -np 2 --gloo` runs of the entrypoint on this host (slow: a few seconds each)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workloads.training.synthetic import make_blobs, synthetic_csv

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ROOT / "workloads" / "training" / "train.py"
HOROVODRUN = Path(sys.executable).parent / "horovodrun"
ALLREDUCED = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "samples", "steps")


def horovodrun(tmp_path: Path, *args: str, workers: int = 2, env: dict[str, str] | None = None):
    if not HOROVODRUN.exists():
        pytest.skip("horovodrun is not installed (scripts/install_horovod.sh)")
    command = [str(HOROVODRUN), "-np", str(workers), "-H", f"localhost:{workers}", "--gloo",
               sys.executable, str(TRAIN), "--model-name", "blobs", "--batch-size", "32",
               "--hidden-units", "16", *args]  # fmt: skip
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=tmp_path, env={**os.environ, **(env or {})},
        check=False,
    )  # fmt: skip
    events = []
    for line in finished.stdout.splitlines():
        if "{" in line:
            rank = int(line[1 : line.index("]")]) if line.startswith("[") else None
            events.append((rank, json.loads(line[line.index("{") :])))
    return finished, events


def test_two_workers_from_s3_agree_and_write_a_complete_artifact(tmp_path, s3, moto_endpoint):
    s3.put_object(Bucket="data", Key="datasets/blobs/v1/data.csv", Body=synthetic_csv(600, seed=3).encode())
    finished, events = horovodrun(
        tmp_path,
        "--dataset-uri", "s3://data/datasets/blobs/v1/", "--output-uri", "s3://artifacts/models/blobs/runs/r1/",
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r1", "--epochs", "3",
        env={key: os.environ[key] for key in os.environ if key.startswith("AWS_")},
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]

    done = {rank: event for rank, event in events if event["event"] == "done"}
    assert set(done) == {0, 1}
    assert done[0]["digest"] == done[1]["digest"]  # broadcast + averaged gradients keep the ranks in sync
    assert {k: done[0]["metrics"][k] for k in ALLREDUCED} == {k: done[1]["metrics"][k] for k in ALLREDUCED}
    assert [event["epoch"] for rank, event in events if event["event"] == "epoch"] == [1, 2, 3]
    # only rank 0 reports progress; every rank says which rows it read (its shard of the S3 object)
    assert all(rank == 0 for rank, event in events if event["event"] not in ("done", "shard"))
    shards = sorted((event["first_row"], event["rows"]) for _, event in events if event["event"] == "shard")
    assert len(shards) == 2 and shards[0][0] == 0 and shards[1][0] == shards[0][1] and sum(r for _, r in shards) == 600

    prefix = "models/blobs/runs/r1/"
    listed = s3.list_objects_v2(Bucket="artifacts", Prefix=prefix)["Contents"]
    assert sorted(item["Key"] for item in listed) == [
        prefix + n for n in ("metadata.json", "metrics.json", "model.pt", "sample.json")
    ]
    model_bytes = s3.get_object(Bucket="artifacts", Key=prefix + "model.pt")["Body"].read()
    metadata = json.loads(s3.get_object(Bucket="artifacts", Key=prefix + "metadata.json")["Body"].read())
    assert metadata["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert metadata["workers"] == 2 and metadata["run_id"] == "r1" and metadata["model_name"] == "blobs"
    assert metadata["feature_names"] == [f"f{i}" for i in range(8)] and metadata["classes"] == [0, 1, 2]
    assert metadata["metrics"]["epochs"] == 3 and metadata["metrics"]["val_accuracy"] > 0.9
    assert metadata["metrics"]["val_loss"] == done[0]["metrics"]["val_loss"]
    assert metadata["hyperparameters"]["batch_size"] == 32 and metadata["horovod_version"] == "0.28.1"

    import torch

    model = torch.jit.load(io.BytesIO(model_bytes))
    features, labels = make_blobs(600, seed=3)
    predictions = model(torch.from_numpy(features)).argmax(1).numpy()
    assert np.mean(predictions == labels) > 0.9  # raw rows in: the normalisation travels inside
    # The sample request: held-out rows in the model server's JSON input, registered for preview traffic.
    assert (metadata["sample_request"], metadata["sample_content_type"]) == ("sample.json", "application/json")
    sample = s3.get_object(Bucket="artifacts", Key=prefix + "sample.json")
    assert sample["ContentType"] == "application/json"
    rows = json.loads(sample["Body"].read())["instances"]
    assert len(rows) == 4 and all(len(row) == 8 for row in rows)
    assert model(torch.tensor(rows)).shape == (4, 3)
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists()


def test_two_workers_resume_from_the_last_checkpoint(tmp_path, blobs_csv):
    data = blobs_csv(400, seed=9)
    common = ["--dataset-uri", str(data), "--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r2"]
    first, _ = horovodrun(tmp_path, *common, "--output-uri", str(tmp_path / "out1"), "--epochs", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    second, events = horovodrun(tmp_path, *common, "--output-uri", str(tmp_path / "out2"), "--epochs", "3")
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = [event for _, event in events if event["event"] == "resumed"]
    assert resumed and resumed[0]["from_epoch"] == 2 and resumed[0]["next_epoch"] == 3
    assert [event["epoch"] for _, event in events if event["event"] == "epoch"] == [3]
    metrics = json.loads((tmp_path / "out2" / "metrics.json").read_text())
    assert [record["epoch"] for record in metrics["history"]] == [1, 2, 3]  # history kept across the restart
    assert json.loads((tmp_path / "out2" / "metadata.json").read_text())["metrics"]["epochs"] == 3


def test_bad_data_fails_every_worker_with_the_reason(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{i},7\n" for i in range(12)))
    finished, _ = horovodrun(
        tmp_path, "--dataset-uri", str(data), "--output-uri", str(tmp_path / "out"),
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r3",
    )  # fmt: skip
    assert finished.returncode != 0
    reasons = [line for line in finished.stderr.splitlines() if "<stderr>:error: " in line]
    assert len(reasons) == 2 and all("'label' has a single class (7)" in line for line in reasons)
    assert not (tmp_path / "out").exists()
    shutil.rmtree(tmp_path / "ckpt", ignore_errors=True)


def test_an_artifact_rank_0_cannot_write_fails_every_worker_instead_of_hanging(tmp_path, blobs_csv):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the output folder's parent should be")
    finished, events = horovodrun(
        tmp_path, "--dataset-uri", str(blobs_csv(200, seed=3)), "--output-uri", str(blocked / "out"),
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r4", "--epochs", "1",
    )  # fmt: skip
    assert finished.returncode != 0
    assert "rank 0 could not write the artifact" in finished.stderr  # rank 1 learns why
    assert not [event for _, event in events if event["event"] in ("artifact", "done")]
