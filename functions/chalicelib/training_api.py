"""Routes: training runs and retention. Each parses the request into domain values, calls one use
case and shapes its answer into JSON."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import authorize, current_platform, json_route, request_json
from control.domain.names import check_name
from control.domain.retention import RetentionRequest
from control.domain.training import TrainingProgress
from control.domain.training_runs import RunRecord, TrainingRun, TrainingRunRequest
from control.usecases import retention, training

training_api = Blueprint(__name__)


def _authorize() -> str:
    return authorize(training_api.current_request, current_platform().settings)


@training_api.route("/training-runs", methods=["POST"])
@json_route
def start_training_run() -> tuple[int, Any]:
    actor = _authorize()
    request = TrainingRunRequest.parse(request_json(training_api.current_request))
    started = training.start_training(current_platform(), request, actor)
    return (200 if started.duplicate else 202), started.to_dict()


@training_api.route("/training-runs", methods=["GET"])
@json_route
def list_training_runs() -> tuple[int, Any]:
    _authorize()
    return 200, {"runs": [_record_json(run) for run in training.list_runs(current_platform())]}


@training_api.route("/training-runs/{run_id}", methods=["GET"])
@json_route
def get_training_run(run_id: str) -> tuple[int, Any]:
    _authorize()
    return 200, _run_json(training.get_training_run(current_platform(), run_id))


@training_api.route("/training-runs/{run_id}/timeline", methods=["GET"])
@json_route
def get_run_timeline(run_id: str) -> tuple[int, Any]:
    _authorize()
    timeline = training.run_timeline(current_platform(), check_name(run_id, "run_id"))
    return 200, {
        "run_id": timeline.run_id,
        "execution_arn": timeline.execution_arn,
        "steps": [
            {"at": step.at.isoformat(), "state": step.state, "event": step.event, "detail": step.detail}
            for step in timeline.steps
        ],
    }


@training_api.route("/training-runs/{run_id}/progress", methods=["GET"])
@json_route
def get_training_progress(run_id: str) -> tuple[int, Any]:
    _authorize()
    progress = training.training_progress(current_platform(), check_name(run_id, "run_id"))
    return 200, {
        "run_id": run_id,
        "available": progress is not None,
        "progress": (progress or TrainingProgress()).to_dict(),
    }


@training_api.route("/retention", methods=["POST"])
@json_route
def apply_retention() -> tuple[int, Any]:
    """Staged datasets and checkpoints on the checkpoint file system: what goes, and why (dry run by default)."""
    _authorize()
    request = RetentionRequest.parse(request_json(training_api.current_request))
    return 200, retention.apply_retention(current_platform(), request).to_dict()


def _record_json(run: RunRecord) -> dict[str, Any]:
    return {"run_id": run.run_id, **run.fields}


def _run_json(run: TrainingRun) -> dict[str, Any]:
    return {"run_id": run.run_id, **run.record, "execution": run.execution}
