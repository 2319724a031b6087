"""Routes: training runs."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import authorize, current_platform, json_route, request_json
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


@training_api.route("/retention", methods=["POST"])
@json_route
def apply_retention() -> tuple[int, Any]:
    """Staged datasets and checkpoints on the checkpoint file system: what goes, and why (dry run by default)."""
    _authorize()
    return 200, retention.apply_retention_from_request(current_platform(), request_json(training_api.current_request))
