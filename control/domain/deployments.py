"""A deployment's recorded state (what the deployment store keeps) and the requests that change it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control.domain.alert_policy import DEFAULT_POLICY, AlertPolicy, IgnoredAlert
from control.domain.canary import CanaryStrategy, parse_strategy
from control.domain.names import check_deployment_name, check_name
from control.domain.rollout import Phase, RolloutSpec, RolloutStatus
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
    strategy: CanaryStrategy | None = None  # the deployment's strategy for its next rollouts; None: blue-green


@dataclass(frozen=True)
class RolloutRequest:
    """`POST /deployments/{name}/rollouts`, parsed: roll `model` `version` out, with optional timing,
    preview-traffic and replica overrides, an alert policy (None: keep the deployment's) and a
    strategy for this rollout (None: the deployment's)."""

    model: str
    version: int
    overrides: Mapping[str, Any] = field(default_factory=dict)
    alert_policy: AlertPolicy | None = None
    strategy: StrategyChoice | None = None

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
            strategy=StrategyChoice(parse_strategy(body["strategy"])) if "strategy" in body else None,
        )


@dataclass(frozen=True)
class StrategyChoice:
    """A strategy someone chose: a canary's steps, or blue-green (`canary` None)."""

    canary: CanaryStrategy | None


@dataclass(frozen=True)
class DeploymentCommand:
    """`POST /deployments/{name}/promote|abort|rollback`, parsed: who asks, and why."""

    deployment: str
    reason: str
    actor: str

    @classmethod
    def parse(cls, deployment: str, body: Any, actor: str) -> DeploymentCommand:
        return cls(check_deployment_name(deployment), parse_reason(body), actor)


@dataclass(frozen=True)
class StrategyChange:
    """`PUT /deployments/{name}/strategy`, parsed: the strategy of the deployment's next rollouts."""

    deployment: str
    strategy: StrategyChoice
    actor: str

    @classmethod
    def parse(cls, deployment: str, body: Any, actor: str) -> StrategyChange:
        if not isinstance(body, Mapping) or "strategy" not in body:
            raise InvalidInput("strategy is required", field="strategy")
        return cls(check_deployment_name(deployment), StrategyChoice(parse_strategy(body["strategy"])), actor)


def parse_reason(body: Any) -> str:
    """The `reason` a rollback or a manual promotion must give."""
    reason = (body or {}).get("reason") if isinstance(body, Mapping) or body is None else None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        raise InvalidInput("reason is required: a string of at most 1000 characters", field="reason")
    return reason


@dataclass(frozen=True)
class StepRequest:
    """One reconcile step asked for by the rollout loop: the deployment, and the loop asking (its
    execution name; "" when stepped by hand)."""

    deployment: str
    loop: str = ""

    @classmethod
    def parse(cls, state: Any) -> StepRequest:
        if not isinstance(state, Mapping):
            raise InvalidInput("the step's input must be an object", field="state")
        loop = state.get("loop", "")
        if not isinstance(loop, str):
            raise InvalidInput("loop must be a string", field="loop")
        return cls(check_deployment_name(state.get("deployment")), loop)


@dataclass(frozen=True)
class PipelineRollout:
    """The training pipeline's StartRollout step, parsed: the run's gate passed and its request named a
    deployment (`auto_deploy`) to roll the registered version out to."""

    run_id: str
    deployment: str
    model: str
    version: int

    @classmethod
    def parse(cls, state: Any) -> PipelineRollout:
        if not isinstance(state, Mapping):
            raise InvalidInput("the step's input must be an object", field="state")
        run_id = state.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput("run_id is required", field="run_id")
        registration = state.get("registration")
        if not isinstance(registration, Mapping):
            raise InvalidInput("registration must be an object", field="registration")
        version = registration.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput("registration.version must be a positive integer", field="registration.version")
        return cls(
            run_id,
            check_deployment_name(state.get("auto_deploy"), "auto_deploy"),
            check_name(registration.get("model_name"), "registration.model_name"),
            version,
        )


@dataclass(frozen=True)
class PipelineRolloutStarted:
    """What StartRollout did: the rollout's loop started, or nothing (`skipped`, with why)."""

    deployment: str
    execution_arn: str = ""
    skipped: str = ""  # the deployment already serves the version


@dataclass(frozen=True)
class StepOutcome:
    """What one reconcile step left: the phase, what serves, why, and when to step again."""

    deployment: str
    phase: Phase
    active_version: int | None
    reason: str
    done: bool  # at rest: the loop ends
    requeue_after: int  # seconds until the next step (0 when done)


@dataclass(frozen=True)
class AlertRollback:
    """A rollback intent an alert recorded, or why it was not (`ignored`)."""

    deployment: str
    key: str
    reason: str = ""
    ignored: str = ""


@dataclass(frozen=True)
class AlertsHandled:
    """An Alertmanager delivery, acted on: the alerts received, the rollbacks, the alerts ignored."""

    received: int
    rollbacks: tuple[AlertRollback, ...]
    ignored: tuple[IgnoredAlert, ...]
