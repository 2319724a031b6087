"""The whole local loop: an object put in S3 → Step Functions → real 2-worker Horovod → registry."""

import hashlib
import json
import uuid

import pytest

from tests.support import wait_for
from workloads.training.synthetic import synthetic_csv

pytestmark = pytest.mark.e2e


def run_pipeline(aws, endpoints, model, body: bytes, timeout=300):
    sfn = aws("stepfunctions")
    machine = endpoints["state_machines"]["training_pipeline"]
    aws("s3").put_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model}/v1/data.csv", Body=body)
    execution = wait_for(
        lambda: next(
            (e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"].startswith(model)), None
        ),
        timeout=30,
        what="the execution",
    )
    described = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d,
        timeout=timeout,
        interval=1,
        what="the pipeline to finish",
    )
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    return execution, described, entered


def test_a_dataset_dropped_in_s3_becomes_a_registered_model_version(aws, endpoints, api, embedded):
    model = f"e2e-{uuid.uuid4().hex[:6]}"
    body = synthetic_csv(1200, seed=3).encode()
    execution, described, entered = run_pipeline(aws, endpoints, model, body)
    assert described["status"] == "SUCCEEDED", described
    steps = ("ValidateDataset", "StageDataset", "LaunchTraining", "CheckTraining", "EvaluateModel", "RegisterModel")
    for state in steps:
        assert state in entered

    # The ranks read the staged copy on the (local) EFS, not S3.
    staging = api.get(f"/training-runs/{execution['name']}").json()["staging"]
    assert staging["folder"].startswith(f"datasets/{model}/v1/") and staging["bytes"] == len(body)
    efs = embedded.state_dir / "cluster" / "checkpoints"
    assert (efs / staging["folder"] / "data.csv").read_bytes() == body
    job = json.loads((embedded.state_dir / "cluster" / "training-jobs" / execution["name"] / "job.json").read_text())
    assert str(efs / staging["folder"] / "data.csv") in job["command"]
    assert not any(part.startswith("s3://") and "datasets/" in part for part in job["command"])

    [version] = api.get(f"/models/{model}/versions").json()["versions"]
    lineage = version["lineage"]
    assert version["version"] == 1 and version["status"] == "registered"
    assert lineage["dataset_uri"] == f"s3://{endpoints['data_bucket']}/datasets/{model}/v1/data.csv"
    head = aws("s3").head_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model}/v1/data.csv")
    assert lineage["dataset_etag"] == head["ETag"].strip('"')
    assert lineage["dataset_version_id"] == head["VersionId"]
    assert lineage["training_run_id"] == execution["name"]
    assert lineage["execution_arn"] == execution["executionArn"]
    assert lineage["workers"] == 2 and lineage["hyperparameters"]["epochs"] == 5
    assert lineage["metrics"]["val_accuracy"] > 0.8

    bucket, _, key = lineage["artifact_uri"][5:].partition("/")
    artifact = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(artifact).hexdigest() == lineage["artifact_sha256"]

    run = api.get(f"/training-runs/{execution['name']}").json()
    assert run["status"] == "REGISTERED" and run["model_version"] == 1
    assert run["execution"]["status"] == "SUCCEEDED"

    # Each rank read only its shard of the staged copy; together, every row exactly once.
    stdout = (embedded.state_dir / "cluster" / "training-jobs" / execution["name"] / "stdout.log").read_text()
    events = [json.loads(line[line.index("{") :]) for line in stdout.splitlines() if '"event": "shard"' in line]
    shards = sorted((event["first_row"], event["rows"]) for event in events)
    assert len(shards) == 2 and shards[0][0] == 0 and shards[1][0] == shards[0][1]
    assert sum(rows for _, rows in shards) == 1200

    # Right-sizing: each worker's use was measured; the model's next run has its recommendation.
    assert run["resources_source"] == {"source": "default"}
    assert [worker["worker"] for worker in run["usage"]] == [0, 1]
    peak = max(worker["memory_peak_mib"] for worker in run["usage"])
    assert 50 < peak < run["recommendation"]["memory_mib"] < run["resources"]["memory_mib"]


def test_a_failing_training_job_fails_the_run_with_its_cause_and_registers_nothing(aws, endpoints, api):
    model = f"e2e-bad-{uuid.uuid4().hex[:6]}"
    rows = "f1,f2,label\n" + "\n".join(f"{i},{i * 2},{7 if i % 2 else 0}" for i in range(200))  # labels 0 and 7
    execution, described, entered = run_pipeline(aws, endpoints, model, rows.encode())
    assert described["status"] == "FAILED"
    assert "RecordFailure" in entered and "RegisterModel" not in entered
    run = api.get(f"/training-runs/{execution['name']}").json()
    assert run["status"] == "FAILED"
    assert "label" in run["cause"].lower()
    assert api.get(f"/models/{model}/versions").status_code == 404


def test_an_unmet_evaluation_gate_registers_nothing(aws, endpoints, api):
    model = f"e2e-gate-{uuid.uuid4().hex[:6]}"
    key = f"datasets/{model}/v1/data.csv"
    aws("s3").put_object(Bucket=endpoints["data_bucket"], Key=key, Body=synthetic_csv(600, seed=5).encode())
    started = api.post(
        "/training-runs",
        json={
            "dataset_uri": f"s3://{endpoints['data_bucket']}/{key}",
            "hyperparameters": {"epochs": 1},
            "gate": {"metric": "val_loss", "threshold": 0.0},
        },
    )
    assert started.status_code in (200, 202), started.text
    run_id = started.json()["run_id"]
    run = wait_for(
        lambda: (r := api.get(f"/training-runs/{run_id}").json()).get("status") in ("FAILED", "REGISTERED") and r,
        timeout=300,
        interval=1,
        what="the run to finish",
    )
    assert run["status"] == "FAILED" and run["error"] == "EvaluationGateNotMet"
    assert "val_loss" in run["cause"]
    versions = api.get(f"/models/{model}/versions")
    assert versions.status_code == 404 or all(
        v["lineage"]["training_run_id"] != run_id for v in versions.json()["versions"]
    )
