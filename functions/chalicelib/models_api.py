"""Routes: the model registry. Each parses the request into domain values, calls one use case and
shapes its answer into JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice import Blueprint

from chalicelib.runtime import authorize, current_platform, json_route, request_json
from control.domain.names import check_name
from control.domain.registry import ModelSummary
from control.domain.registry_requests import HistoryQuery, ModelHistory, VersionDecision, parse_version
from control.usecases import models

models_api = Blueprint(__name__)


def _authorize() -> str:
    return authorize(models_api.current_request, current_platform().settings)


@models_api.route("/models", methods=["GET"])
@json_route
def list_models() -> tuple[int, Any]:
    _authorize()
    return 200, {"models": [_model_json(model) for model in models.list_models(current_platform())]}


@models_api.route("/models/{name}/versions", methods=["GET"])
@json_route
def list_versions(name: str) -> tuple[int, Any]:
    _authorize()
    versions = models.list_versions(current_platform(), check_name(name, "model"))
    return 200, {"model_name": name, "versions": [version.to_dict() for version in versions]}


@models_api.route("/models/{name}/versions/{version}", methods=["GET"])
@json_route
def get_version(name: str, version: str) -> tuple[int, Any]:
    _authorize()
    model_name = check_name(name, "model")
    return 200, models.get_version(current_platform(), model_name, parse_version(version)).to_dict()


@models_api.route("/models/{name}/versions/{version}/{decision}", methods=["POST"])
@json_route
def decide(name: str, version: str, decision: str) -> tuple[int, Any]:
    actor = _authorize()
    request = VersionDecision.parse(name, version, decision, request_json(models_api.current_request))
    return 200, models.decide(current_platform(), request, actor).to_dict()


@models_api.route("/models/{name}/history", methods=["GET"])
@json_route
def history(name: str) -> tuple[int, Any]:
    _authorize()
    params: Mapping[str, str] = models_api.current_request.query_params or {}
    return 200, _history_json(models.history(current_platform(), HistoryQuery.parse(name, params.get("at"))))


def _history_json(history: ModelHistory) -> dict[str, Any]:
    shaped: dict[str, Any] = {"model_name": history.model_name, "history": [e.to_dict() for e in history.entries]}
    if history.production_at is not None:
        shaped["production_at"] = {"at": history.production_at.at, "version": history.production_at.version}
    return shaped


def _model_json(model: ModelSummary) -> dict[str, Any]:
    return {
        "model_name": model.model_name,
        "latest_version": model.latest_version,
        "aliases": dict(model.aliases),
        "created_at": model.created_at,
        "updated_at": model.updated_at,
    }
