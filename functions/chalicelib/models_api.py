"""Routes: the model registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice import Blueprint

from chalicelib.runtime import authorize, current_platform, json_route, request_json
from control.usecases import models

models_api = Blueprint(__name__)


def _authorize() -> str:
    return authorize(models_api.current_request, current_platform().settings)


@models_api.route("/models", methods=["GET"])
@json_route
def list_models() -> tuple[int, Any]:
    _authorize()
    return 200, models.list_models(current_platform())


@models_api.route("/models/{name}/versions", methods=["GET"])
@json_route
def list_versions(name: str) -> tuple[int, Any]:
    _authorize()
    return 200, models.list_versions(current_platform(), name)


@models_api.route("/models/{name}/versions/{version}", methods=["GET"])
@json_route
def get_version(name: str, version: str) -> tuple[int, Any]:
    _authorize()
    return 200, models.get_version(current_platform(), name, version)


@models_api.route("/models/{name}/versions/{version}/{decision}", methods=["POST"])
@json_route
def decide(name: str, version: str, decision: str) -> tuple[int, Any]:
    actor = _authorize()
    body = request_json(models_api.current_request)
    return 200, models.decide(current_platform(), name, version, decision, body, actor)


@models_api.route("/models/{name}/history", methods=["GET"])
@json_route
def history(name: str) -> tuple[int, Any]:
    _authorize()
    params: Mapping[str, str] = models_api.current_request.query_params or {}
    return 200, models.history(current_platform(), name, params.get("at"))
