"""Routes: training runs."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import authorize, current_platform, json_route, request_json
from control.domain.training import TrainingProgress
from control.usecases import retention, training

training_api = Blueprint(__name__)


def _authorize() -> str:
    return authorize(training_api.current_request, current_platform().settings)


@training_api.route("/training-runs", methods=["POST"])
@json_route
def start_training_run() -> tuple[int, Any]:
    actor = _authorize()
    result = training.start_training_from_request(current_platform(), request_json(training_api.current_request), actor)
    return (200 if result["outcome"] == "duplicate" else 202), result


@training_api.route("/training-runs", methods=["GET"])
@json_route
def list_training_runs() -> tuple[int, Any]:
    _authorize()
    return 200, {"runs": current_platform().registry.list_runs()}


@training_api.route("/training-runs/{run_id}", methods=["GET"])
@json_route
def get_training_run(run_id: str) -> tuple[int, Any]:
    _authorize()
    return 200, training.get_training_run(current_platform(), run_id)


@training_api.route("/training-runs/{run_id}/timeline", methods=["GET"])
@json_route
def get_run_timeline(run_id: str) -> tuple[int, Any]:
    _authorize()
    execution_arn, steps = training.run_timeline(current_platform(), run_id)
    return 200, {
        "run_id": run_id,
        "execution_arn": execution_arn,
        "steps": [
            {"at": step.at.isoformat(), "state": step.state, "event": step.event, "detail": step.detail}
            for step in steps
        ],
    }


@training_api.route("/training-runs/{run_id}/progress", methods=["GET"])
@json_route
def get_training_progress(run_id: str) -> tuple[int, Any]:
    _authorize()
    progress = training.training_progress(current_platform(), run_id)
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
    return 200, retention.apply_retention_from_request(current_platform(), request_json(training_api.current_request))
