"""Routes: deployments (blue-green and canary rollouts, strategies, manual promotions, aborts, rollbacks)
and the Alertmanager webhook. Each route parses its request into a domain type, calls one use case and
shapes the domain answer into JSON."""

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
from control.domain.canary import strategy_to_dict
from control.domain.deployments import AlertsHandled, DeploymentCommand, RolloutRequest, StrategyChange
from control.domain.names import check_deployment_name
from control.errors import ControlError
from control.usecases import rollouts
from control.usecases.rollouts import DeploymentView

deployments_api = Blueprint(__name__)


def _authorize() -> str:
    return authorize(deployments_api.current_request, current_platform().settings)


def _command(name: str) -> DeploymentCommand:
    """The caller's rollback, promote or abort of `name`: authorized first, then its body's reason parsed."""
    actor = _authorize()
    return DeploymentCommand.parse(name, request_json(deployments_api.current_request), actor)


@deployments_api.route("/deployments", methods=["GET"])
@json_route
def list_deployments() -> tuple[int, Any]:
    _authorize()
    return 200, {"deployments": rollouts.list_deployments(current_platform())}


def _view(view: DeploymentView) -> dict[str, Any]:
    record = view.record
    return {
        "deployment": record.status.deployment,
        "model": record.spec.model,
        "spec": record.spec.to_dict(),
        "status": record.status.to_dict(),
        "alert_policy": record.policy.to_dict(),
        "strategy": strategy_to_dict(record.strategy),  # the next rollouts'; spec.strategy is this one's
        "canary": None if view.canary is None else view.canary.to_dict(),
        "autoscaling": view.autoscaling,
        "history": [entry.to_dict() for entry in view.history],
    }


@deployments_api.route("/deployments/{name}", methods=["GET"])
@json_route
def describe(name: str) -> tuple[int, Any]:
    _authorize()
    check_deployment_name(name)
    return 200, _view(rollouts.describe(current_platform(), name))


@deployments_api.route("/deployments/{name}/strategy", methods=["PUT"])
@json_route
def set_strategy(name: str) -> tuple[int, Any]:
    actor = _authorize()
    change = StrategyChange.parse(name, request_json(deployments_api.current_request), actor)
    record = rollouts.set_strategy(current_platform(), change)
    return 200, {"deployment": name, "strategy": strategy_to_dict(record.strategy)}


@deployments_api.route("/deployments/{name}/rollouts", methods=["POST"])
@json_route
def request_rollout(name: str) -> tuple[int, Any]:
    actor = _authorize()
    body = request_json(deployments_api.current_request)
    check_deployment_name(name)
    request = RolloutRequest.parse(body)
    started = rollouts.start(current_platform(), name, request, actor)
    return 202, {"deployment": name, "status": started.status.to_dict(), "execution_arn": started.execution_arn}


@deployments_api.route("/deployments/{name}/rollback", methods=["POST"])
@json_route
def rollback(name: str) -> tuple[int, Any]:
    command = _command(name)
    status = rollouts.rollback(current_platform(), command)
    count("Rollback", deployment=name)
    return 202, {"deployment": name, "status": status.to_dict()}


@deployments_api.route("/deployments/{name}/promote", methods=["POST"])
@json_route
def promote(name: str) -> tuple[int, Any]:
    command = _command(name)
    return 202, {"deployment": name, "status": rollouts.promote(current_platform(), command).to_dict()}


@deployments_api.route("/deployments/{name}/abort", methods=["POST"])
@json_route
def abort(name: str) -> tuple[int, Any]:
    """End a canary in progress: its weight returns to 0 at once, it scales down; 409 without one."""
    command = _command(name)
    status = rollouts.abort(current_platform(), command)
    count("Rollback", deployment=name)
    return 202, {"deployment": name, "status": status.to_dict()}


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
    result = alerts_json(rollouts.handle_alerts(platform, [payload]))
    logger.info("alerts handled", extra=result)
    count_rollbacks(result)
    return 200, result


def alerts_json(handled: AlertsHandled) -> dict[str, Any]:
    """An alert delivery's outcome, as the webhook answers it and the SNS handler logs it."""
    rollbacks: list[dict[str, Any]] = [
        {"deployment": r.deployment, **({"ignored": r.ignored} if r.ignored else {"reason": r.reason}), "key": r.key}
        for r in handled.rollbacks
    ]
    ignored = [
        {"alertname": i.alertname, "deployment": i.deployment, "fingerprint": i.fingerprint, "reason": i.reason}
        for i in handled.ignored
    ]
    return {"received": handled.received, "rollbacks": rollbacks, "ignored": ignored}
