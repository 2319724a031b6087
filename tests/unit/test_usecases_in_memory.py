"""Use cases against in-memory fakes of the ports (tests/fakes.py): fast, and no seam written into a
platform after the fact — the Platform is built from the adapters a test gives it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from control.domain.deployments import PipelineRollout, PipelineRolloutStarted, RolloutRequest
from control.domain.registry import VersionStatus
from control.domain.rollout import Phase
from control.domain.training import TrainingProgress, progress_queries
from control.errors import AlreadyServing, Conflict, NotFound, TransientError
from control.usecases import rollouts, training
from tests.fakes import NOW, FixedMetrics, InMemoryPipelines, InMemoryRegistry, in_memory_platform
from tests.support.lineage import lineage


def registered(registry: InMemoryRegistry, model: str, run_id: str, status: VersionStatus) -> int:
    version, _ = registry.register_version(model, lineage(model, run_id), actor="test", now=NOW)
    if status is not VersionStatus.REGISTERED:
        registry.set_status(model, version.version, VersionStatus.APPROVED, actor="test", reason="", now=NOW)
    return version.version


def test_a_rollout_records_the_deployment_and_starts_its_loop_once() -> None:
    registry, pipelines = InMemoryRegistry(), InMemoryPipelines()
    platform = in_memory_platform(registry=registry, pipelines=pipelines)
    version = registered(registry, "churn", "run-1", VersionStatus.APPROVED)

    started = rollouts.start(platform, "churn-api", RolloutRequest("churn", version, {"bake_seconds": 5}), "alice")

    record = platform.deployments.get("churn-api")
    assert record is not None and record.spec.version == version and record.spec.bake_seconds == 5
    assert started.execution_arn.endswith(":churn-api-r0") and record.loop == "churn-api-r0"
    assert pipelines.started == {started.execution_arn: {"deployment": "churn-api"}}
    assert [e.action for e in registry.history("churn")][-1] == "rollout-requested"


def test_asking_for_the_version_already_served_is_an_already_serving_conflict_the_pipeline_skips() -> None:
    registry = InMemoryRegistry()
    platform = in_memory_platform(registry=registry)
    version = registered(registry, "churn", "run-1", VersionStatus.APPROVED)
    rollouts.start(platform, "churn-api", RolloutRequest("churn", version), "alice")
    record = platform.deployments.get("churn-api")
    assert record is not None
    settled = replace(record.status, phase=Phase.COMPLETED, stable_version=version)
    platform.deployments.put(replace(record, status=settled), expected_revision=record.status.revision)

    with pytest.raises(AlreadyServing) as raised:
        rollouts.start(platform, "churn-api", RolloutRequest("churn", version), "bob")
    assert isinstance(raised.value, Conflict) and raised.value.code == "Conflict"  # the API's answer is unchanged

    state = {"run_id": "run-1", "auto_deploy": "churn-api", "registration": {"model_name": "churn", "version": version}}
    skipped = rollouts.start_from_pipeline(platform, PipelineRollout.parse(state))
    assert skipped == PipelineRolloutStarted("churn-api", skipped=raised.value.message)


def test_a_version_not_approved_is_not_rolled_out() -> None:
    registry = InMemoryRegistry()
    platform = in_memory_platform(registry=registry)
    version = registered(registry, "churn", "run-1", VersionStatus.REGISTERED)
    with pytest.raises(Conflict, match="approve it before deploying") as raised:
        rollouts.start(platform, "churn-api", RolloutRequest("churn", version), "alice")
    assert not isinstance(raised.value, AlreadyServing)
    assert platform.deployments.get("churn-api") is None


def test_training_progress_reads_the_runs_metrics_and_is_unknown_when_they_cannot_be_read() -> None:
    queries = progress_queries("run-7")
    metrics = FixedMetrics({queries["epoch"]: 3.0, queries["train_loss"]: 0.25})
    progress = training.training_progress(in_memory_platform(metrics=metrics), "run-7")
    assert progress == TrainingProgress(epoch=3.0, train_loss=0.25) and progress.known

    down = FixedMetrics(failure=TransientError("Prometheus unreachable", retry_after=5))
    assert training.training_progress(in_memory_platform(metrics=down), "run-7") is None


def test_the_run_timeline_comes_from_the_pipeline_history_and_a_run_without_one_is_not_found() -> None:
    pipelines = InMemoryPipelines()
    platform = in_memory_platform(pipelines=pipelines)
    with pytest.raises(NotFound, match="no Step Functions execution"):
        training.run_timeline(platform, "run-9")

    started = pipelines.start(platform.settings.training_state_machine_arn, "run-9", {})
    pipelines.events[started.execution_arn] = [
        {"type": "TaskStateEntered", "timestamp": NOW, "stateEnteredEventDetails": {"name": "Validate"}},
        {
            "type": "TaskFailed",
            "timestamp": NOW + timedelta(seconds=2),
            "taskFailedEventDetails": {"error": "InvalidInput", "cause": '{"errorMessage": "no label column"}'},
        },
    ]
    timeline = training.run_timeline(platform, "run-9")
    assert timeline.execution_arn == started.execution_arn
    assert [(s.state, s.event, s.detail) for s in timeline.steps] == [
        ("Validate", "entered", ""),
        ("Validate", "failed", "InvalidInput: no label column"),
    ]


class AutoscalingOnly:
    """The serving cluster as describe sees it: the active version's HPA and VPA."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def autoscaling(self, name: str) -> dict:
        self.asked.append(name)
        return {"hpa": {"min_replicas": 2, "max_replicas": 10}, "vpa": {"update_mode": "Off", "recommendation": None}}


def test_a_deployment_is_described_with_its_active_versions_hpa_beside_its_vpa() -> None:
    registry, serving = InMemoryRegistry(), AutoscalingOnly()
    platform = in_memory_platform(registry=registry, serving=serving)
    version = registered(registry, "churn", "run-1", VersionStatus.APPROVED)
    rollouts.start(platform, "churn-api", RolloutRequest("churn", version), "alice")
    assert rollouts.describe(platform, "churn-api").autoscaling is None  # nothing serves yet
    record = platform.deployments.get("churn-api")
    assert record is not None
    platform.deployments.put(
        replace(record, status=replace(record.status, active_version=version, revision=record.status.revision + 1)),
        expected_revision=record.status.revision,
    )
    shown = rollouts.describe(platform, "churn-api").autoscaling
    assert shown == {"version": version, **serving.autoscaling(f"churn-api-v{version}")}
    assert serving.asked[0] == f"churn-api-v{version}"
