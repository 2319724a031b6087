"""Right-sizing training (VPA's recommender rules): the domain, and the pipeline steps that measure a
run and size the model's next one, against in-memory fakes of the ports (tests/fakes.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from control.cli.runs import resource_rows
from control.domain.pipeline_steps import PipelineRun
from control.domain.rightsizing import (
    MIB,
    Allocatable,
    NodeCapacity,
    Recommendation,
    WorkerUsage,
    percentile,
    recommend,
)
from control.domain.training import JobState, JobStatus
from control.errors import InvalidInput
from control.usecases import training
from tests.fakes import NOW, SETTINGS, in_memory_platform

G5_2XLARGE = {"vcpus": 8, "memory_mib": 32768, "gpus": 1, "max_pods": 58}
ROOMY = Allocatable(100_000, 1_000_000)


def usage(worker: int, cpu: float, memory_mib: float) -> WorkerUsage:
    return WorkerUsage(worker, cpu, cpu * 1.2, int(memory_mib * MIB), 60)


def test_the_eks_ami_reservations_give_the_allocatable():
    # kube-reserved CPU 60 + 10 + 5 + 5 + 4 x 2.5 millicores; memory 255 + 11 x 58 MiB, eviction 100 MiB
    assert NodeCapacity.parse(G5_2XLARGE).allocatable() == Allocatable(7910, 32768 - 993)
    with pytest.raises(InvalidInput, match="vcpus"):
        NodeCapacity.parse({"memory_mib": 1, "max_pods": 1})


def test_what_the_nodes_daemonsets_request_is_not_allocatable():
    with_daemonsets = G5_2XLARGE | {"daemonset_cpu_millicores": 275, "daemonset_memory_mib": 472}
    assert NodeCapacity.parse(with_daemonsets).allocatable() == Allocatable(7910 - 275, 32768 - 993 - 472)
    with pytest.raises(InvalidInput, match="daemonset_memory_mib must be a non-negative integer"):
        NodeCapacity.parse(G5_2XLARGE | {"daemonset_memory_mib": -1})


def test_cpu_p90_and_peak_memory_of_the_largest_worker_plus_15_percent():
    recommendation = recommend([usage(0, 0.9, 1800), usage(1, 1.1, 2000)], ROOMY)
    assert (recommendation.cpu_millicores, recommendation.memory_mib) == (1265, 2300)
    assert recommendation.capped == []


def test_tiny_use_gets_the_smallest_request_a_run_may_make():
    recommendation = recommend([usage(0, 0.001, 10)], ROOMY)
    assert (recommendation.cpu_millicores, recommendation.memory_mib) == (100, 256)


def test_more_than_a_node_can_give_is_capped_and_the_cap_is_reported():
    bound = NodeCapacity.parse(G5_2XLARGE).allocatable()
    recommendation = recommend([usage(0, 12.0, 40_000)], bound)
    assert (recommendation.cpu_millicores, recommendation.memory_mib) == (bound.cpu_millicores, bound.memory_mib)
    assert recommendation.capped == ["cpu_millicores", "memory_mib"]
    shown = recommendation.to_dict()
    assert shown["uncapped"] == {"cpu_millicores": 13800, "memory_mib": 46000}
    assert shown["cap"] == {"cpu_millicores": 7910, "memory_mib": 31775}
    assert Recommendation.from_dict(shown) == recommendation


def test_percentile_is_the_nearest_rank():
    assert percentile([], 0.9) == 0.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert percentile([5.0], 0.9) == 5.0


class RecordingCluster:
    """The training cluster at the project's boundary: keeps what is submitted; every job succeeds."""

    def __init__(self) -> None:
        self.submitted: dict[str, dict[str, Any]] = {}

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        self.submitted[manifest["metadata"]["name"]] = manifest

    def training_job_status(self, name: str) -> JobStatus:
        return JobStatus(name, JobState.SUCCEEDED, "Completed")

    def delete_training_job(self, name: str) -> None:
        self.submitted.pop(name, None)


class MeasuredUsage:
    """ResourceUsage that reports the given workers for every job."""

    def __init__(self, workers: list[WorkerUsage]) -> None:
        self.workers = workers
        self.asked: list[tuple[str, int, datetime]] = []

    def worker_usage(self, job_name: str, *, workers: int, since: datetime, now: datetime) -> list[WorkerUsage]:
        self.asked.append((job_name, workers, since))
        return self.workers


def state(run_id: str, resources: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model_name": "iris",
        "dataset_version": "v1",
        "dataset": {"uri": "s3://data/datasets/iris/v1/data.csv", "bucket": "data", "key": "k"},
        "workers": 2,
    } | ({"resources": resources} if resources else {})


def worker_requests(cluster: RecordingCluster, job: str) -> dict[str, str]:
    pod = cluster.submitted[job]["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]
    return pod["containers"][0]["resources"]["requests"]


def run_to_success(platform: Any, run_state: dict[str, Any]) -> dict[str, Any]:
    run = PipelineRun.parse(run_state)
    job = training.launch_training(platform, run)
    training.check_training(platform, run, job)
    record = platform.registry.get_run(run_state["run_id"])
    return {"run_id": record.run_id, **record.fields}  # as GET /training-runs/{id} shows it


def test_a_measured_run_sizes_the_models_next_run_unless_the_caller_pins_resources():
    cluster = RecordingCluster()
    measured = MeasuredUsage([usage(0, 0.9, 1800), usage(1, 1.1, 2000)])
    settings = replace(SETTINGS, training_node_capacity=G5_2XLARGE)
    platform = in_memory_platform(settings, training=cluster, usage=measured)

    first = run_to_success(platform, state("iris-r1", {"cpu_millicores": 2000, "memory_mib": 8192}))
    assert first["resources_source"] == {"source": "pinned"}
    assert worker_requests(cluster, "iris-r1")["memory"] == "8192Mi"
    assert measured.asked == [("iris-r1", 2, NOW)]
    assert [w["memory_peak_mib"] for w in first["usage"]] == [1800.0, 2000.0]
    assert (first["recommendation"]["cpu_millicores"], first["recommendation"]["memory_mib"]) == (1265, 2300)

    second = run_to_success(platform, state("iris-r2"))
    assert second["resources_source"] == {"source": "recommended", "from_run": "iris-r1"}
    assert worker_requests(cluster, "iris-r2")["cpu"] == "1265m"
    assert worker_requests(cluster, "iris-r2")["memory"] == "2300Mi"
    assert second["resources"]["scratch_gib"] == 50  # scratch is not measured: the default stays

    run_to_success(platform, state("iris-r3", {"memory_mib": 16384}))
    assert worker_requests(cluster, "iris-r3")["memory"] == "16384Mi"  # pinned wins over the recommendation

    rows = dict(resource_rows(second))
    assert "1265m CPU, 2300 MiB" in rows["recommended"] and "capped" not in rows["recommended"]
    assert "(recommended by iris-r1)" in rows["requested"]
    assert "memory peak 2000.0 MiB" in rows["used worker 1"]


def test_a_model_with_no_measured_run_starts_from_the_defaults_and_other_models_do_not_count():
    cluster = RecordingCluster()
    platform = in_memory_platform(training=cluster, usage=MeasuredUsage([usage(0, 3.0, 9000)]))
    run_to_success(platform, state("iris-r1"))
    other = state("wine-r1") | {"model_name": "wine"}
    training.launch_training(platform, PipelineRun.parse(other))
    assert platform.registry.get_run("wine-r1").fields["resources_source"] == {"source": "default"}
    assert worker_requests(cluster, "wine-r1")["memory"] == "8192Mi"


def test_a_capped_recommendation_is_shown_with_its_cap():
    settings = replace(SETTINGS, training_node_capacity=G5_2XLARGE)
    platform = in_memory_platform(settings, training=RecordingCluster(), usage=MeasuredUsage([usage(0, 1.0, 40_000)]))
    run = run_to_success(platform, state("iris-r1"))
    assert run["recommendation"]["capped"] == ["memory_mib"]
    shown = dict(resource_rows(run))["recommended"]
    assert "capped[/] at a training node's allocatable: memory_mib 46000 → 31775" in shown


def test_nothing_measured_records_no_recommendation_and_the_run_still_succeeds():
    platform = in_memory_platform(training=RecordingCluster())  # NoUsage
    run = run_to_success(platform, state("iris-r1"))
    assert "recommendation" not in run and run["status"] == "TRAINING"
