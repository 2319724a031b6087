"""The training pipeline's task Lambdas as the state machine calls them (`{"state", "execution_arn"}`
in, the step's result out), on in-memory ports: the use cases take and give domain values, and the
state the machine keeps is the same JSON as before (the Choice states read `$.job.state` and
`$.evaluation.passed`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from control.domain.deployments import PipelineRollout
from control.domain.pipeline_steps import PipelineRun, RunFailure
from control.domain.training import JobState, JobStatus, TrainingRequest, WorkerResources
from control.errors import FatalTaskError, InvalidInput
from control.ports import Platform
from tests.fakes import NOW, InMemoryObjects, in_memory_platform

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:training:iris-v1-abc"
CSV = b"x,y,label\n1,2,0\n3,4,1\n"
KEY = "datasets/iris/v1/data.csv"


class OneJobCluster:
    """The training cluster at the project's boundary: keeps what is submitted, reports `state`."""

    def __init__(self) -> None:
        self.submitted: dict[str, dict[str, Any]] = {}
        self.state = JobState.RUNNING

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        self.submitted[manifest["metadata"]["name"]] = manifest

    def training_job_status(self, name: str) -> JobStatus:
        return JobStatus(name, self.state, "Completed" if self.state.finished else "")

    def delete_training_job(self, name: str) -> None:
        self.submitted.pop(name, None)


@pytest.fixture
def tasks() -> Iterator[Any]:
    from chalicelib import runtime, tasks

    yield tasks
    runtime.use_platform(None)


def execution_input(resources: WorkerResources | None = None) -> dict[str, Any]:
    dataset = {
        "uri": f"s3://data/{KEY}",
        "bucket": "data",
        "key": KEY,
        "model_name": "iris",
        "dataset_version": "v1",
        "etag": "etag-1",
        "version_id": "v1",
        "size": len(CSV),
    }
    request = TrainingRequest("iris", "v1", dataset, workers=1, auto_deploy="web", resources=resources)
    return request.to_execution_input("iris-v1-abc") | {"poll_seconds": 5}


def call(task: Any, state: dict[str, Any]) -> Any:
    """A task Lambda as the state machine's Parameters call it; the result goes through JSON as in AWS."""
    return json.loads(json.dumps(task({"state": state, "execution_arn": EXECUTION}, None)))


def test_the_execution_input_parses_into_the_run_and_back_unchanged() -> None:
    for resources in (None, WorkerResources(cpu_millicores=500)):
        raw = execution_input(resources)
        run = PipelineRun.parse(raw, EXECUTION)
        assert run.to_input() == raw
        assert (run.dataset.version_id, run.workers, run.resources, run.execution_arn) == (
            "v1",
            1,
            resources,
            EXECUTION,
        )


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ([], "state"),
        ({"model_name": "iris", "dataset": {"bucket": "b", "key": "k"}}, "run_id"),
        ({"run_id": "r", "model_name": "iris", "dataset": "s3://b/k"}, "dataset"),
        ({"run_id": "r", "model_name": "iris", "dataset": {"key": "k"}}, "dataset.bucket"),
        ({"run_id": "r", "model_name": "iris", "dataset": {"bucket": "b", "key": "k"}, "workers": "2"}, "workers"),
    ],
)
def test_a_state_that_is_not_a_run_names_the_field(state: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        PipelineRun.parse(state)
    assert raised.value.field == field


def test_the_steps_keep_the_same_json_in_the_state_from_validation_to_registration(tasks: Any) -> None:
    from chalicelib import runtime

    objects, cluster = InMemoryObjects(), OneJobCluster()
    times = iter([NOW + timedelta(seconds=s) for s in range(100)])
    platform: Platform = in_memory_platform(objects=objects, training=cluster, clock=lambda: next(times))
    runtime.use_platform(platform)
    objects.put_bytes("data", KEY, CSV)
    state = execution_input()

    state["validation"] = call(tasks.validate_dataset, state)
    assert state["validation"] == {"files": [f"s3://data/{KEY}"], "bytes": len(CSV), "columns": ["x", "y", "label"]}
    assert platform.registry.get_run("iris-v1-abc").fields["request"] == execution_input()

    state["job"] = call(tasks.launch_training, state)
    assert set(state["job"]) == {"job_name", "launched_at", "deadline_seconds", "output_uri"}
    assert state["job"]["output_uri"] == "s3://artifacts/models/iris/runs/iris-v1-abc/"
    assert list(cluster.submitted) == [state["job"]["job_name"]]

    state["job"] = call(tasks.check_training, state)
    assert state["job"]["state"] == "RUNNING"
    cluster.state = JobState.SUCCEEDED
    state["job"] = call(tasks.check_training, state)  # a second check reads the first check's job
    assert (state["job"]["state"], state["job"]["reason"]) == ("SUCCEEDED", "Completed")

    artifact = b"weights"
    prefix = "models/iris/runs/iris-v1-abc/"
    metadata = {
        "artifact": "model.pt",
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "metrics": {"val_accuracy": 0.9},
    }
    objects.put_bytes("artifacts", prefix + "model.pt", artifact)
    objects.put_bytes("artifacts", prefix + "metadata.json", json.dumps(metadata).encode())
    state["evaluation"] = call(tasks.evaluate_model, state)
    assert state["evaluation"]["passed"] is True
    assert (state["evaluation"]["metric"], state["evaluation"]["value"]) == ("val_accuracy", 0.9)
    assert state["evaluation"]["sample_request_uri"] == ""

    state["registration"] = call(tasks.register_model, state)
    assert state["registration"] == {"model_name": "iris", "version": 1, "created": True}
    assert call(tasks.register_model, state) == {"model_name": "iris", "version": 1, "created": False}
    lineage = platform.registry.get_version("iris", 1).lineage
    assert (lineage.execution_arn, lineage.dataset_version_id, lineage.workers) == (EXECUTION, "v1", 0)

    # The request asked to deploy: the version is approved and the deployment's rollout loop starts.
    started = call(tasks.start_rollout, state)
    assert set(started) == {"deployment", "execution_arn"} and started["deployment"] == "web"
    assert platform.registry.get_version("iris", 1).status == "approved"


def test_a_rollout_step_without_a_deployment_to_roll_out_to_names_the_field() -> None:
    registration = {"model_name": "iris", "version": 1}
    with pytest.raises(InvalidInput) as raised:
        PipelineRollout.parse({"run_id": "r", "registration": registration, "auto_deploy": ""})
    assert raised.value.field == "auto_deploy"
    with pytest.raises(InvalidInput) as raised:
        PipelineRollout.parse({"run_id": "r", "registration": {**registration, "version": "1"}, "auto_deploy": "web"})
    assert raised.value.field == "registration.version"


def test_the_catch_path_keeps_the_cause_or_the_gate_not_met_on_the_run(tasks: Any) -> None:
    from chalicelib import runtime

    platform = in_memory_platform()
    runtime.use_platform(platform)
    cause = json.dumps({"errorType": "FatalTaskError", "errorMessage": "TrainingFailed: the job died"})
    failed = execution_input() | {"error": {"Error": "FatalTaskError", "Cause": cause}}
    assert call(tasks.record_run_failure, failed) == {
        "error": "FatalTaskError",
        "cause": "TrainingFailed: the job died",
    }
    assert platform.registry.get_run("iris-v1-abc").fields["cause"] == "TrainingFailed: the job died"

    gate = {"passed": False, "metric": "val_accuracy", "value": 0.4, "threshold": 0.5}
    assert RunFailure.parse(execution_input() | {"evaluation": gate}).error == "EvaluationGateNotMet"
    assert call(tasks.record_run_failure, execution_input() | {"evaluation": gate}) == {
        "error": "EvaluationGateNotMet",
        "cause": "evaluation gate not met: val_accuracy = 0.4, threshold 0.5",
    }


def test_a_state_without_a_run_fails_the_task_for_good(tasks: Any) -> None:
    from chalicelib import runtime

    runtime.use_platform(in_memory_platform())
    with pytest.raises(FatalTaskError, match="run_id is required"):
        tasks.validate_dataset({"state": {"model_name": "iris"}, "execution_arn": EXECUTION}, None)
