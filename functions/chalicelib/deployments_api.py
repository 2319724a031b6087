"""Routes: deployments (blue-green rollouts, manual promotions, rollbacks) and the Alertmanager webhook."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import (
    authorize,
    check_token,
    count,
    count_rollbacks,
    current_platform,
    json_route,
    logger,
    request_json,
)
from control.domain.alert_payload import parse_webhook
from control.domain.deployments import RolloutRequest, parse_reason
from control.domain.names import check_name
from control.errors import ControlError
from control.usecases import rollouts

deployments_api = Blueprint(__name__)


def _authorize() -> str:
    return authorize(deployments_api.current_request, current_platform().settings)


@deployments_api.route("/deployments", methods=["GET"])
@json_route
def list_deployments() -> tuple[int, Any]:
    _authorize()
    return 200, rollouts.list_deployments(current_platform())


@deployments_api.route("/deployments/{name}", methods=["GET"])
@json_route
def describe(name: str) -> tuple[int, Any]:
    _authorize()
    return 200, rollouts.describe(current_platform(), name)


@deployments_api.route("/deployments/{name}/rollouts", methods=["POST"])
@json_route
def request_rollout(name: str) -> tuple[int, Any]:
    actor = _authorize()
    body = request_json(deployments_api.current_request)
    check_name(name, "deployment")
    request = RolloutRequest.parse(body)
    started = rollouts.start(current_platform(), name, request, actor)
    return 202, {"deployment": name, "status": started.status.to_dict(), "execution_arn": started.execution_arn}


@deployments_api.route("/deployments/{name}/rollback", methods=["POST"])
@json_route
def rollback(name: str) -> tuple[int, Any]:
    actor = _authorize()
    body = request_json(deployments_api.current_request)
    check_name(name, "deployment")
    reason = parse_reason(body)
    status = rollouts.rollback(current_platform(), name, reason, actor)
    count("Rollback", deployment=name)
    return 202, {"deployment": name, "status": status.to_dict()}


@deployments_api.route("/deployments/{name}/promote", methods=["POST"])
@json_route
def promote(name: str) -> tuple[int, Any]:
    actor = _authorize()
    body = request_json(deployments_api.current_request)
    check_name(name, "deployment")
    reason = parse_reason(body)
    return 202, {"deployment": name, "status": rollouts.promote(current_platform(), name, reason, actor).to_dict()}


@deployments_api.route("/alerts/alertmanager", methods=["POST"])
@json_route
def alertmanager_webhook() -> tuple[int, Any]:
    """Alertmanager's webhook (payload version 4), authenticated by its own bearer token."""
    request = deployments_api.current_request
    platform = current_platform()
    check_token(request.headers, platform.alert_token(), required=True)
    try:
        payload = parse_webhook(request.raw_body or b"")
    except ControlError as error:  # recorded, never dropped: Alertmanager will not resend it
        raw = request.raw_body or b""  # chalice types it str | bytes; it is bytes once read
        body = (raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))[:100_000]
        platform.dead_letters.send(
            source="alertmanager-webhook", error=error.code, reason=error.message, payload=body, now=platform.clock()
        )
        raise
    result = rollouts.handle_alerts(platform, [payload])
    logger.info("alerts handled", extra=result)
    count_rollbacks(result)
    return 200, result
