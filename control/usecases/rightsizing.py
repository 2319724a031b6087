"""Right-sizing training runs (the design's "VPA for training jobs").

When a run's job succeeds, its workers' CPU and memory use is read (the pods' metrics on EKS, the
rank processes locally), a recommendation is computed as VPA's recommender would
(control/domain/rightsizing.py), and both are kept on the run's record, where
`GET /training-runs/{id}` and `runs show` find them. The model's next run requests what its
latest measured run recommends, unless the caller pinned `resources`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control.domain.pipeline_steps import LaunchedJob, PipelineRun
from control.domain.registry import iso
from control.domain.rightsizing import Allocatable, NodeCapacity, Recommendation, recommend
from control.domain.training import WorkerResources
from control.errors import ControlError
from control.ports import Platform
from control.settings import Settings

SOURCE_PINNED = "pinned"
SOURCE_RECOMMENDED = "recommended"
SOURCE_DEFAULT = "default"


def training_node_bound(settings: Settings) -> Allocatable:
    """One training node's allocatable; without the setting, the largest request a run may make."""
    if not settings.training_node_capacity:
        limits = WorkerResources.LIMITS
        return Allocatable(limits["cpu_millicores"][1], limits["memory_mib"][1])
    return NodeCapacity.parse(settings.training_node_capacity).allocatable()


def record_usage(platform: Platform, run: PipelineRun, job: LaunchedJob) -> dict[str, Any] | None:
    """Measure the finished job's workers and keep the recommendation on the run; None when
    nothing was measured. Never fails the run: right-sizing is advice."""
    try:
        usage = platform.usage.worker_usage(
            job.job_name,
            workers=run.workers,
            since=datetime.fromisoformat(job.launched_at.replace("Z", "+00:00")),
            now=platform.clock(),
        )
    except (ControlError, OSError, ValueError, KeyError):
        return None
    if not usage:
        return None
    recommendation = recommend(usage, training_node_bound(platform.settings))
    fields = {
        "model_name": run.model_name,  # what the model's next run looks its runs up by
        "usage": [worker.to_dict() for worker in usage],
        "recommendation": recommendation.to_dict(),
        "measured_at": iso(platform.clock()),
    }
    platform.registry.put_run(run.run_id, fields)
    return fields


def latest_recommendation(
    platform: Platform, model_name: str, *, before_run: str = ""
) -> tuple[str, Recommendation] | None:
    """(run id, recommendation) of the model's most recently measured run other than `before_run`."""
    measured = [
        (run.run_id, run.measured_at, recommendation)
        for run in platform.registry.list_runs()
        if run.model_name == model_name and run.run_id != before_run and (recommendation := run.recommendation)
    ]
    if not measured:
        return None
    run_id, _, recommendation = max(measured, key=lambda found: found[1])
    return run_id, Recommendation.from_dict(recommendation)


def resources_for(platform: Platform, run: PipelineRun) -> tuple[WorkerResources, dict[str, str]]:
    """The run's worker resources and where they come from: pinned by the caller, recommended by
    the model's latest measured run (scratch stays the default), or the defaults."""
    if run.resources:
        return run.resources, {"source": SOURCE_PINNED}
    try:
        latest = latest_recommendation(platform, run.model_name, before_run=run.run_id)
    except ControlError:
        latest = None
    if latest is None:
        return WorkerResources(), {"source": SOURCE_DEFAULT}
    run_id, recommendation = latest
    return recommendation.resources(), {"source": SOURCE_RECOMMENDED, "from_run": run_id}
