"""A deployment's recorded state: what the deployment store keeps, one record per deployment."""

from __future__ import annotations

from dataclasses import dataclass, field

from control.domain.alert_policy import DEFAULT_POLICY, AlertPolicy
from control.domain.rollout import RolloutSpec, RolloutStatus


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
