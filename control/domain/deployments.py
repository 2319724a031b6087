"""A deployment's recorded state (what the deployment store keeps) and the requests that change it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control.domain.alert_policy import DEFAULT_POLICY, AlertPolicy
from control.domain.names import check_name
from control.domain.rollout import RolloutSpec, RolloutStatus
from control.errors import InvalidInput


@dataclass(frozen=True)
class DeploymentRecord:
    """The rollout spec, the recorded status (with its revision), the alert policy, the idempotency keys
    of the alerts already acted on, and the reconcile loop that owns the deployment (a newer loop
    retires an older one)."""

    spec: RolloutSpec
    status: RolloutStatus
    policy: AlertPolicy = DEFAULT_POLICY
    handled_alerts: tuple[str, ...] = field(default_factory=tuple)
    loop: str = ""  # the reconcile loop (state machine execution name) that steps this deployment


@dataclass(frozen=True)
class RolloutRequest:
    """`POST /deployments/{name}/rollouts`, parsed: roll `model` `version` out, with optional timing,
    preview-traffic and replica overrides and an alert policy (None: keep the deployment's)."""

    model: str
    version: int
    overrides: Mapping[str, Any] = field(default_factory=dict)
    alert_policy: AlertPolicy | None = None

    @classmethod
    def parse(cls, body: Any) -> RolloutRequest:
        if not isinstance(body, Mapping):
            raise InvalidInput("the request body must be a JSON object", field="body")
        model = check_name(body.get("model"), "model")
        version = body.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput("version must be a positive integer", field="version")
        overridable = RolloutSpec.TIMINGS + RolloutSpec.PREVIEW_TRAFFIC + ("replicas",)
        return cls(
            model=model,
            version=version,
            overrides={name: body[name] for name in overridable if name in body},
            alert_policy=AlertPolicy.parse(body["alert_policy"]) if "alert_policy" in body else None,
        )


def parse_reason(body: Any) -> str:
    """The `reason` a rollback or a manual promotion must give."""
    reason = (body or {}).get("reason") if isinstance(body, Mapping) or body is None else None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        raise InvalidInput("reason is required: a string of at most 1000 characters", field="reason")
    return reason
