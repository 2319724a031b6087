"""Blue-green and canary rollouts as one repeatable reconcile step over explicit recorded state.

    reconcile(spec, status, observed, now) -> Decision(actions, status)

`spec` says what is wanted (green = `spec.version`, blue = `spec.previous_version`), `status` is
what was recorded last time (phase, selectors, last-known-good, rollback intent, revision),
`observed` is what the cluster and Prometheus look like now. The step is pure: the caller
measures, calls `reconcile`, applies the actions (all idempotent), then writes the new status
with a conditional write on `status.revision`.

Phases:

    PENDING → DEPLOYING_PREVIEW → PRE_PROMOTION_ANALYSIS → PROMOTING → BAKING
            → SCALING_DOWN_OLD → COMPLETED
    PRE_PROMOTION_ANALYSIS / BAKING ⇄ PAUSED            (analysis inconclusive, resumes on data)
    PRE_PROMOTION_ANALYSIS / BAKING / PAUSED → promoted by hand (`request_promotion`)
    any phase but the rollback ones, COMPLETED included → ROLLING_BACK → ROLLED_BACK

A canary strategy (`spec.strategy`) replaces the preview and the switch with weighted steps
(control/domain/canary_step.py):

    PENDING → CANARY (setWeight / pause / analysis steps, then the switch) → SCALING_DOWN_OLD → COMPLETED
    CANARY ⇄ PAUSED (its analysis inconclusive);  CANARY / PAUSED → ROLLING_BACK (weight 0 first) → ROLLED_BACK

A rollback is an input: `status.intent`, recorded by a user, by an alert (`request_rollback`), or
by the step itself when green never becomes ready or its analysis fails. There is one code path
for all of them. Traffic only moves to a version whose observed ready replicas reach
`spec.replicas`; a selector that is already right is left alone.

Preview traffic: while green is under analysis (PRE_PROMOTION_ANALYSIS through BAKING, PAUSED
included) the step wants a bounded load test sending the version's registered sample request to
the preview Service at `spec.preview_traffic_rate`, so a deployment with no outside traffic still
gets data; it is stopped when the analysis ends (scaling down, completed, rolled back, failed).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from control.domain.canary import CanaryStrategy, parse_strategy, strategy_to_dict
from control.domain.names import check_name
from control.domain.rollout_analysis import (
    AnalysisCheck,
    AnalysisResult,
    AnalysisStage,
    CheckResult,
    Comparison,
    Outcome,
    check_unique_names,
    default_checks,
    evaluate,
    parse_checks,
)
from control.errors import Conflict, InvalidInput

__all__ = [
    "Action",
    "AnalysisCheck",
    "AnalysisRequest",
    "AnalysisResult",
    "AnalysisSample",
    "AnalysisStage",
    "CheckResult",
    "Comparison",
    "Decision",
    "EnsureDeployment",
    "EventKind",
    "IntentSource",
    "ManualPromotion",
    "MarkLastKnownGood",
    "Observed",
    "Outcome",
    "Phase",
    "RecordEvent",
    "RollbackIntent",
    "RolloutSpec",
    "RolloutStatus",
    "ScaleDeployment",
    "ScheduleRequeue",
    "ServiceRole",
    "SetTrafficWeight",
    "StartPreviewTraffic",
    "StopPreviewTraffic",
    "SwitchSelector",
    "VersionObservation",
    "analysis_request",
    "default_checks",
    "reconcile",
    "request_promotion",
    "request_rollback",
    "start_rollout",
]

MAX_REPLICAS = 100
MAX_SECONDS = 7 * 24 * 3600
MIN_REQUEUE_SECONDS = 1.0
MAX_ROLLBACK_WINDOW_SECONDS = 12 * 3600  # inside the rollout state machine's 24 h execution timeout
WARM_REPLICAS = 1  # blue's replicas through its rollback window, once the scale-down delay has passed
MAX_PREVIEW_TRAFFIC_RATE = 1000.0  # requests per second


# --------------------------------------------------------------------------------------- spec


def _check_version(value: Any, field_name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{field_name} must be a positive integer; got {value!r}", field=field_name)
    return value


def _check_seconds(value: Any, field_name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= MAX_SECONDS:
        raise InvalidInput(
            f"{field_name} must be a number of seconds between {minimum:g} and {MAX_SECONDS}; got {value!r}",
            field=field_name,
        )
    return float(value)


@dataclass(frozen=True)
class RolloutSpec:
    """What the rollout wants: move `deployment` from `previous_version` (blue) to `version` (green)."""

    deployment: str
    model: str
    version: int
    previous_version: int | None  # blue: serving now, the rollback target; None for a first rollout
    replicas: int = 2
    pre_promotion: tuple[AnalysisCheck, ...] = field(default_factory=default_checks)
    post_promotion: tuple[AnalysisCheck, ...] = field(default_factory=default_checks)
    bake_seconds: float = 300.0
    scale_down_delay_seconds: float = 600.0  # from the switch; blue keeps all its replicas this long
    # From the switch, blue (last-known-good) keeps WARM_REPLICAS ready replica this long, so that a
    # rollback inside it is a traffic switch rather than a cold start; then it goes to 0. Its cost:
    # WARM_REPLICAS x this window per promotion (1 inference pod for 30 min by default).
    rollback_window_seconds: float = 1800.0
    ready_timeout_seconds: float = 600.0
    inconclusive_timeout_seconds: float = 300.0  # analysis without a verdict this long → PAUSED
    analysis_interval_seconds: float = 30.0
    poll_interval_seconds: float = 5.0
    # Preview traffic while green is analysed: requests/s (0 turns it off) and the load test's bound.
    preview_traffic_rate: float = 5.0
    preview_traffic_seconds: float = 1800.0
    sample_request_uri: str = ""  # the version's registered sample request; none: no preview traffic
    strategy: CanaryStrategy | None = None  # None: blue-green; a canary shifts traffic step by step

    PREVIEW_TRAFFIC = ("preview_traffic_rate", "preview_traffic_seconds")
    TIMINGS = (
        "bake_seconds",
        "scale_down_delay_seconds",
        "rollback_window_seconds",
        "ready_timeout_seconds",
        "inconclusive_timeout_seconds",
        "analysis_interval_seconds",
        "poll_interval_seconds",
    )

    def __post_init__(self) -> None:
        check_name(self.deployment, "deployment")
        check_name(self.model, "model")
        _check_version(self.version, "version")
        _check_version(self.previous_version, "previous_version", optional=True)
        if self.previous_version == self.version:
            raise InvalidInput(
                f"version {self.version} is already the serving version of {self.deployment}",
                field="version",
            )
        if (
            isinstance(self.replicas, bool)
            or not isinstance(self.replicas, int)
            or not (1 <= self.replicas <= MAX_REPLICAS)
        ):
            raise InvalidInput(
                f"replicas must be an integer between 1 and {MAX_REPLICAS}; got {self.replicas!r}",
                field="replicas",
            )
        for stage in ("pre_promotion", "post_promotion"):
            checks = getattr(self, stage)
            if not isinstance(checks, tuple) or not all(isinstance(c, AnalysisCheck) for c in checks):
                raise InvalidInput(f"{stage} must be a tuple of AnalysisCheck", field=stage)
            check_unique_names(checks, stage)
        for name in self.TIMINGS:
            minimum = 1.0 if name in ("analysis_interval_seconds", "poll_interval_seconds") else 0.0
            _check_seconds(getattr(self, name), name, minimum)
        if self.rollback_window_seconds > MAX_ROLLBACK_WINDOW_SECONDS:  # the reconcile loop waits it out
            raise InvalidInput(
                f"rollback_window_seconds must be at most {MAX_ROLLBACK_WINDOW_SECONDS} (12 h); "
                f"got {self.rollback_window_seconds!r}",
                field="rollback_window_seconds",
            )
        rate = self.preview_traffic_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= MAX_PREVIEW_TRAFFIC_RATE:
            raise InvalidInput(
                f"preview_traffic_rate must be a number of requests per second between 0 (off) and "
                f"{MAX_PREVIEW_TRAFFIC_RATE:g}; got {rate!r}",
                field="preview_traffic_rate",
            )
        _check_seconds(self.preview_traffic_seconds, "preview_traffic_seconds", 1.0)
        if self.strategy is not None:
            if not isinstance(self.strategy, CanaryStrategy):
                raise InvalidInput("strategy must be a CanaryStrategy or None (blue-green)", field="strategy")
            if self.previous_version is None:
                raise InvalidInput(
                    f"{self.deployment} has no stable version to compare a canary with; "
                    "roll the first version out blue-green",
                    field="strategy",
                )
        if not isinstance(self.sample_request_uri, str) or (
            self.sample_request_uri and not self.sample_request_uri.startswith("s3://")
        ):
            raise InvalidInput(
                f"sample_request_uri must be an s3:// URI or empty; got {self.sample_request_uri!r}",
                field="sample_request_uri",
            )

    @property
    def is_canary(self) -> bool:
        return self.strategy is not None

    @property
    def sends_preview_traffic(self) -> bool:
        return self.preview_traffic_rate > 0 and bool(self.sample_request_uri)

    def why_no_preview_traffic(self) -> str:
        if self.preview_traffic_rate <= 0:
            return "preview traffic is off (preview_traffic_rate 0)"
        if not self.sample_request_uri:
            return f"v{self.version} has no registered sample request, so no preview traffic was sent"
        return ""

    @classmethod
    def parse(cls, raw: Any) -> RolloutSpec:
        """From a JSON object (API body merged with registry facts); errors name the bad field."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("rollout spec must be an object", field="spec")
        known = {"deployment", "model", "version", "previous_version", "replicas", "pre_promotion",
                 "post_promotion", "sample_request_uri", "strategy", *cls.TIMINGS, *cls.PREVIEW_TRAFFIC}  # fmt: skip
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidInput(f"unknown rollout settings: {', '.join(unknown)}", field=unknown[0])
        for required in ("deployment", "model", "version"):
            if required not in raw:
                raise InvalidInput(f"{required} is required", field=required)
        values: dict[str, Any] = {key: raw[key] for key in known if key in raw}
        values.setdefault("previous_version", None)
        for stage in ("pre_promotion", "post_promotion"):
            if stage in raw:
                values[stage] = parse_checks(raw[stage], stage)
        for name in cls.TIMINGS:
            if name in values:
                values[name] = _check_seconds(values[name], name)
        if "strategy" in values:
            values["strategy"] = parse_strategy(values["strategy"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "deployment": self.deployment,
            "model": self.model,
            "version": self.version,
            "previous_version": self.previous_version,
            "replicas": self.replicas,
            "pre_promotion": [check.to_dict() for check in self.pre_promotion],
            "post_promotion": [check.to_dict() for check in self.post_promotion],
        }
        body.update({name: getattr(self, name) for name in self.TIMINGS + self.PREVIEW_TRAFFIC})
        body["sample_request_uri"] = self.sample_request_uri
        body["strategy"] = strategy_to_dict(self.strategy)
        return body


# ------------------------------------------------------------------------------------- status


class Phase(enum.StrEnum):
    PENDING = "PENDING"
    DEPLOYING_PREVIEW = "DEPLOYING_PREVIEW"
    PRE_PROMOTION_ANALYSIS = "PRE_PROMOTION_ANALYSIS"
    PROMOTING = "PROMOTING"
    BAKING = "BAKING"
    SCALING_DOWN_OLD = "SCALING_DOWN_OLD"
    COMPLETED = "COMPLETED"
    PAUSED = "PAUSED"
    CANARY = "CANARY"  # a canary strategy's steps: traffic shifts to the new version by weight
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"

    @property
    def in_progress(self) -> bool:
        """A rollout in one of these phases blocks another rollout of the same deployment."""
        return self not in (Phase.COMPLETED, Phase.ROLLED_BACK, Phase.FAILED)

    @property
    def accepts_rollback(self) -> bool:
        """COMPLETED accepts one too: an alert after promotion rolls back to the previous version."""
        return self not in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.FAILED)

    @property
    def accepts_promotion(self) -> bool:
        """A person may promote past an analysis: while it runs, or once it paused without a verdict."""
        return self in (Phase.PRE_PROMOTION_ANALYSIS, Phase.BAKING, Phase.PAUSED, Phase.CANARY)


class IntentSource(enum.StrEnum):
    ALERT = "alert"  # key: alert fingerprint @ startsAt
    USER = "user"  # key: the API request id
    ROLLOUT = "rollout"  # the step itself: ready timeout, failed analysis; key: what failed


@dataclass(frozen=True)
class RollbackIntent:
    """A recorded wish to roll back; `key` makes recording it idempotent (duplicate deliveries)."""

    deployment: str
    source: IntentSource
    key: str
    reason: str
    requested_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)  # the alert's labels, for the history

    def describe(self) -> str:
        return f"{self.source.value} {self.key}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "source": self.source.value,
            "key": self.key,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
            "labels": dict(self.labels),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RollbackIntent:
        return cls(
            raw["deployment"],
            IntentSource(raw["source"]),
            raw["key"],
            raw["reason"],
            datetime.fromisoformat(raw["requested_at"]),
            dict(raw.get("labels", {})),
        )


@dataclass(frozen=True)
class ManualPromotion:
    """A person's recorded decision to promote past the analysis; the next step acts on it."""

    deployment: str
    key: str  # the API request id: recording the same request twice is a no-op
    actor: str
    reason: str
    requested_at: datetime

    def describe(self) -> str:
        return f"{self.actor}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "key": self.key,
            "actor": self.actor,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ManualPromotion:
        return cls(
            raw["deployment"], raw["key"], raw["actor"], raw["reason"], datetime.fromisoformat(raw["requested_at"])
        )


@dataclass(frozen=True)
class RolloutStatus:
    """Everything the step needs to remember between calls; persisted as one item per deployment."""

    deployment: str
    model: str
    target_version: int
    previous_version: int | None
    phase: Phase
    phase_entered_at: datetime
    started_at: datetime
    revision: int = 0  # bumped on every change; the conditional write expects the old value
    active_version: int | None = None  # what the active Service selects (last observed)
    preview_version: int | None = None
    stable_version: int | None = None  # last-known-good
    promoted_at: datetime | None = None
    paused_from: Phase | None = None
    reason: str = ""  # why it is paused, rolling back, rolled back or failed
    intent: RollbackIntent | None = None
    last_analysis: AnalysisResult | None = None
    inconclusive_since: datetime | None = None
    promotion: ManualPromotion | None = None
    # A canary: the step it is at (== len(steps): promoting), the weight last applied, when the step began.
    canary_step: int = 0
    canary_weight: int = 0
    step_started_at: datetime | None = None

    @property
    def rollback_target(self) -> int | None:
        return self.previous_version

    @property
    def serving_versions(self) -> frozenset[int]:
        """Versions a rollback would take away from users or from the preview under analysis."""
        versions = {self.active_version}
        if self.phase.in_progress:
            versions.add(self.preview_version)
        return frozenset(v for v in versions if v is not None)

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "deployment": self.deployment,
            "model": self.model,
            "target_version": self.target_version,
            "previous_version": self.previous_version,
            "phase": self.phase.value,
            "phase_entered_at": iso(self.phase_entered_at),
            "started_at": iso(self.started_at),
            "revision": self.revision,
            "active_version": self.active_version,
            "preview_version": self.preview_version,
            "stable_version": self.stable_version,
            "promoted_at": iso(self.promoted_at),
            "paused_from": None if self.paused_from is None else self.paused_from.value,
            "reason": self.reason,
            "intent": None if self.intent is None else self.intent.to_dict(),
            "last_analysis": None if self.last_analysis is None else self.last_analysis.to_dict(),
            "inconclusive_since": iso(self.inconclusive_since),
            "promotion": None if self.promotion is None else self.promotion.to_dict(),
            "canary_step": self.canary_step,
            "canary_weight": self.canary_weight,
            "step_started_at": iso(self.step_started_at),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RolloutStatus:
        def when(key: str) -> datetime | None:
            value = raw.get(key)
            return None if value is None else datetime.fromisoformat(value)

        try:
            return cls(
                deployment=raw["deployment"],
                model=raw["model"],
                target_version=int(raw["target_version"]),
                previous_version=None if raw.get("previous_version") is None else int(raw["previous_version"]),
                phase=Phase(raw["phase"]),
                phase_entered_at=datetime.fromisoformat(raw["phase_entered_at"]),
                started_at=datetime.fromisoformat(raw["started_at"]),
                revision=int(raw.get("revision", 0)),
                active_version=None if raw.get("active_version") is None else int(raw["active_version"]),
                preview_version=None if raw.get("preview_version") is None else int(raw["preview_version"]),
                stable_version=None if raw.get("stable_version") is None else int(raw["stable_version"]),
                promoted_at=when("promoted_at"),
                paused_from=None if raw.get("paused_from") is None else Phase(raw["paused_from"]),
                reason=raw.get("reason", ""),
                intent=None if raw.get("intent") is None else RollbackIntent.from_dict(raw["intent"]),
                last_analysis=None
                if raw.get("last_analysis") is None
                else AnalysisResult.from_dict(raw["last_analysis"]),
                inconclusive_since=when("inconclusive_since"),
                promotion=None if raw.get("promotion") is None else ManualPromotion.from_dict(raw["promotion"]),
                canary_step=int(raw.get("canary_step", 0)),
                canary_weight=int(raw.get("canary_weight", 0)),
                step_started_at=when("step_started_at"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"recorded rollout status is malformed: {error!r}", field="status") from error


def start_rollout(spec: RolloutSpec, now: datetime) -> RolloutStatus:
    """The first recorded status of a rollout; blue (if any) is serving and last-known-good."""
    return RolloutStatus(
        deployment=spec.deployment,
        model=spec.model,
        target_version=spec.version,
        previous_version=spec.previous_version,
        phase=Phase.PENDING,
        phase_entered_at=now,
        started_at=now,
        active_version=spec.previous_version,
        stable_version=spec.previous_version,
    )


def request_rollback(status: RolloutStatus, intent: RollbackIntent) -> RolloutStatus:
    """Record a rollback intent; the next reconcile step acts on it. Idempotent on `intent.key`.

    Raises Conflict when there is nothing to roll back (already rolling back or rolled back,
    failed, or a first rollout with no previous version)."""
    if intent.deployment != status.deployment:
        raise InvalidInput(
            f"rollback intent is for {intent.deployment}, status is for {status.deployment}",
            field="deployment",
        )
    if status.intent is not None and status.intent.key == intent.key:
        return status
    if not status.phase.accepts_rollback:
        raise Conflict(
            f"{status.deployment} is {status.phase.value}; nothing to roll back"
            + (f" (already requested by {status.intent.describe()})" if status.intent else ""),
            field="deployment",
        )
    if status.intent is not None:
        raise Conflict(
            f"{status.deployment}: a rollback is already requested by {status.intent.describe()}",
            field="deployment",
        )
    if status.rollback_target is None:
        raise Conflict(f"{status.deployment} has no previous version to roll back to", field="deployment")
    return replace(status, intent=intent, revision=status.revision + 1)


def request_promotion(status: RolloutStatus, promotion: ManualPromotion) -> RolloutStatus:
    """Record a manual promotion; the next reconcile step acts on it. Idempotent on `promotion.key`.

    Raises Conflict unless the rollout is in an analysis phase or PAUSED, or when a rollback or
    another promotion is already recorded."""
    if promotion.deployment != status.deployment:
        raise InvalidInput(
            f"promotion is for {promotion.deployment}, status is for {status.deployment}", field="deployment"
        )
    if status.promotion is not None and status.promotion.key == promotion.key:
        return status
    if not status.phase.accepts_promotion:
        raise Conflict(
            f"{status.deployment} is {status.phase.value}; a rollout can be promoted by hand only while "
            f"PAUSED or in analysis ({Phase.PRE_PROMOTION_ANALYSIS.value}, {Phase.BAKING.value})",
            field="deployment",
        )
    if status.intent is not None:
        raise Conflict(
            f"{status.deployment}: a rollback is already requested by {status.intent.describe()}", field="deployment"
        )
    if status.promotion is not None:
        raise Conflict(
            f"{status.deployment}: a promotion is already requested by {status.promotion.describe()}",
            field="deployment",
        )
    return replace(status, promotion=promotion, revision=status.revision + 1)


# ------------------------------------------------------------------------------------ observed


@dataclass(frozen=True)
class VersionObservation:
    """A version's Deployment as seen now; a version with no Deployment is absent from the map."""

    desired: int
    ready: int


@dataclass(frozen=True)
class AnalysisSample:
    """Values measured for `analysis_request(spec, status)`: check name → value, None for no data."""

    stage: AnalysisStage
    version: int
    values: Mapping[str, float | None]
    error: str = ""  # e.g. "Prometheus unreachable: connection refused" (all values None)
    baseline: Mapping[str, float | None] = field(default_factory=dict)  # a canary's: stable's values


@dataclass(frozen=True)
class Observed:
    deployments: Mapping[int, VersionObservation]
    active_selector: int | None  # version the active Service selects; None if it selects none
    preview_selector: int | None
    analysis: AnalysisSample | None = None
    preview_traffic: bool = False  # green's preview-traffic load test exists (running or finished)
    canary_selector: int | None = None  # version the canary Service selects
    canary_weight: int = 0  # % of the requests the Ingress sends to the canary Service now

    def ready(self, version: int | None, replicas: int) -> bool:
        seen = self.deployments.get(version) if version is not None else None
        return seen is not None and seen.ready >= replicas >= 1


@dataclass(frozen=True)
class AnalysisRequest:
    stage: AnalysisStage
    version: int
    queries: Mapping[str, str]  # check name → rendered PromQL
    baseline_queries: Mapping[str, str] = field(default_factory=dict)  # a canary's: the same for stable


def analysis_request(spec: RolloutSpec, status: RolloutStatus) -> AnalysisRequest | None:
    """What to measure before the next step, or None. Measure it and pass it as Observed.analysis.

    None when a rollback is requested and will be acted on: the step rolls back whatever the
    measurements say, and a rollback's switch should not wait for Prometheus."""
    if status.intent is not None and status.phase.accepts_rollback:
        return None
    phase = status.paused_from if status.phase is Phase.PAUSED else status.phase
    if phase is Phase.CANARY:
        from control.domain.canary_step import canary_analysis_request  # the canary's steps build on this module

        return canary_analysis_request(spec, status)
    if phase is Phase.PRE_PROMOTION_ANALYSIS:
        stage, checks = AnalysisStage.PRE_PROMOTION, spec.pre_promotion
    elif phase in (Phase.BAKING, Phase.SCALING_DOWN_OLD):
        stage, checks = AnalysisStage.POST_PROMOTION, spec.post_promotion
    else:
        return None
    if not checks:
        return None
    queries = {
        check.name: check.render(deployment=spec.deployment, model=spec.model, version=spec.version) for check in checks
    }
    return AnalysisRequest(stage, spec.version, queries)


# ------------------------------------------------------------------------------------- actions


class ServiceRole(enum.StrEnum):
    ACTIVE = "active"  # Service <deployment>
    PREVIEW = "preview"  # Service <deployment>-preview
    CANARY = "canary"  # Service <deployment>-canary: what the Ingress's canary weight goes to


class EventKind(enum.StrEnum):
    STARTED = "rollout-started"
    PREVIEW_READY = "preview-ready"
    ANALYSIS_PASSED = "analysis-passed"
    PAUSED = "analysis-paused"
    RESUMED = "analysis-resumed"
    PROMOTED = "promoted"
    BAKED = "bake-complete"
    COMPLETED = "rollout-completed"
    ROLLBACK_STARTED = "rollback-started"
    ROLLED_BACK = "rolled-back"
    FAILED = "rollout-failed"
    PROMOTED_BY_HAND = "promoted-by-hand"
    PREVIEW_TRAFFIC_STARTED = "preview-traffic-started"
    ROLLBACK_WINDOW_ENDED = "rollback-window-ended"
    WEIGHT_CHANGED = "traffic-weight-changed"
    CANARY_STEP = "canary-step-done"


@dataclass(frozen=True)
class EnsureDeployment:
    """Create the version's Deployment if missing, or scale it up to at least `replicas`."""

    version: int
    replicas: int


@dataclass(frozen=True)
class ScaleDeployment:
    version: int
    replicas: int


@dataclass(frozen=True)
class SwitchSelector:
    """Point a Service at a version. Only emitted when the observed selector differs."""

    service: ServiceRole
    version: int


@dataclass(frozen=True)
class SetTrafficWeight:
    """Send `weight` % of the requests to the canary Service (selecting `version`), the rest to the
    active one: the Ingress's weighted forward. Setting the weight it already has changes nothing."""

    version: int
    weight: int


@dataclass(frozen=True)
class RecordEvent:
    """Append to the registry history. Key it by (deployment, new revision, kind) to de-duplicate."""

    kind: EventKind
    message: str


@dataclass(frozen=True)
class MarkLastKnownGood:
    """Move the registry's last-known-good (production alias) to this version."""

    version: int


@dataclass(frozen=True)
class StartPreviewTraffic:
    """Start a bounded load test sending `payload_uri` to the preview Service (green under analysis)."""

    version: int
    rate: float  # requests per second
    seconds: float
    payload_uri: str


@dataclass(frozen=True)
class StopPreviewTraffic:
    """Delete the version's preview-traffic load test (analysis over). Deleting one that is gone succeeds."""

    version: int


@dataclass(frozen=True)
class ScheduleRequeue:
    after_seconds: float


Action = (
    EnsureDeployment
    | ScaleDeployment
    | SwitchSelector
    | SetTrafficWeight
    | RecordEvent
    | MarkLastKnownGood
    | StartPreviewTraffic
    | StopPreviewTraffic
    | ScheduleRequeue
)


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    status: RolloutStatus
    changed: bool  # the status differs from the one passed in (revision bumped): write it

    @property
    def requeue_after(self) -> float | None:
        """Seconds until the next step; None when the rollout is at rest (COMPLETED, ROLLED_BACK, FAILED)
        with nothing left to do (a COMPLETED rollout steps once more when blue's rollback window ends)."""
        for action in self.actions:
            if isinstance(action, ScheduleRequeue):
                return action.after_seconds
        return None


# ---------------------------------------------------------------------------------- reconcile


_RANGE = re.compile(r"\[(\d+[smhdwy])(?::[^\]]*)?\]")  # a PromQL range, e.g. [1m] or [5m:30s]


class ReconcileStep:
    def __init__(self, spec: RolloutSpec, status: RolloutStatus, observed: Observed, now: datetime) -> None:
        self.spec = spec
        self.status = status
        self.observed = observed
        self.now = now
        self.actions: list[Action] = []
        self.requeue: float | None = None

    # state
    def enter(self, phase: Phase, **changes: Any) -> None:
        self.status = replace(self.status, phase=phase, phase_entered_at=self.now, **changes)

    def update(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)

    def emit(self, action: Action) -> None:
        if action not in self.actions:
            self.actions.append(action)

    def event(self, kind: EventKind, message: str) -> None:
        self.emit(RecordEvent(kind, message))

    def wait(self, seconds: float, *deadlines: datetime) -> None:
        remaining = [(deadline - self.now).total_seconds() for deadline in deadlines]
        self.requeue = max(MIN_REQUEUE_SECONDS, min([seconds, *(r for r in remaining if r > 0)]))

    def elapsed(self, since: datetime | None) -> float:
        return 0.0 if since is None else (self.now - since).total_seconds()

    # cluster
    def ready(self, version: int | None) -> bool:
        return self.observed.ready(version, self.spec.replicas)

    def describe_readiness(self, version: int) -> str:
        seen = self.observed.deployments.get(version)
        if seen is None:
            return f"v{version} has no Deployment"
        return f"v{version} has {seen.ready}/{self.spec.replicas} replicas ready"

    def ensure(self, version: int) -> None:
        seen = self.observed.deployments.get(version)
        if seen is None or seen.desired < self.spec.replicas:
            self.emit(EnsureDeployment(version, self.spec.replicas))

    def scaled_down(self, version: int, replicas: int = 0) -> bool:
        """Ask for at most `replicas`; True once the cluster shows no more wanted. Never the serving version."""
        seen = self.observed.deployments.get(version)
        if seen is None or seen.desired <= replicas:
            return True
        if version == self.observed.active_selector:
            return False
        self.emit(ScaleDeployment(version, replicas))
        return False

    def switch(self, service: ServiceRole, version: int) -> bool:
        """Point the Service at `version`; True if it already selects it (nothing emitted)."""
        seen = {
            ServiceRole.ACTIVE: self.observed.active_selector,
            ServiceRole.PREVIEW: self.observed.preview_selector,
            ServiceRole.CANARY: self.observed.canary_selector,
        }[service]
        if seen == version:
            return True
        self.emit(SwitchSelector(service, version))
        return False

    # analysis
    def analyse(self, stage: AnalysisStage) -> AnalysisResult:
        checks = self.spec.pre_promotion if stage is AnalysisStage.PRE_PROMOTION else self.spec.post_promotion
        sample = self.observed.analysis
        usable = sample is not None and sample.stage is stage and sample.version == self.spec.version
        values: Mapping[str, float | None] = sample.values if usable and sample else {}
        error = sample.error if usable and sample else ("" if not checks else "no measurements yet")
        if usable and not error and checks and all(values.get(check.name) is None for check in checks):
            error = self.no_requests(stage, checks)
        result = evaluate(checks, values, stage=stage, version=self.spec.version, now=self.now, error=error)
        self.update(last_analysis=result)
        return result

    def no_requests(self, stage: AnalysisStage, checks: tuple[AnalysisCheck, ...]) -> str:
        """Why every check came back empty, in words: nothing reached the version (and why not)."""
        windows = (match.group(1) for check in checks if (match := _RANGE.search(check.query)))
        window = next(windows, "")
        where = f"the preview v{self.spec.version}" if stage is AnalysisStage.PRE_PROMOTION else f"v{self.spec.version}"
        message = f"no requests reached {where}" + (f" in the last {window}" if window else "")
        why = "" if stage is AnalysisStage.CANARY else self.spec.why_no_preview_traffic()
        return f"{message}; {why}" if why else message

    def note_inconclusive(self, result: AnalysisResult, from_phase: Phase) -> None:
        """Keep waiting for data; pause once there has been no verdict for too long."""
        since = self.status.inconclusive_since or self.now
        self.update(inconclusive_since=since)
        if self.elapsed(since) >= self.spec.inconclusive_timeout_seconds:
            reason = (
                f"{result.stage.value.lower().replace('_', '-')} analysis of v{self.spec.version} inconclusive "
                f"for {self.elapsed(since):.0f}s ({result.summary()}); waiting for data, not promoting blindly"
            )
            self.enter(Phase.PAUSED, paused_from=from_phase, reason=reason)
            self.event(EventKind.PAUSED, reason)
        else:
            self.wait(
                self.spec.analysis_interval_seconds,
                since + timedelta(seconds=self.spec.inconclusive_timeout_seconds),
            )

    def lost_promotion(self) -> bool:
        """After the switch, traffic must stay on green; if it is elsewhere, finish a rollback.

        It happens when a rollback's switch was applied but its status write was lost: going on
        would scale blue away under live traffic, so the step rolls back instead."""
        active = self.observed.active_selector
        if active == self.spec.version:
            return False
        where = "no version" if active is None else f"v{active}"
        self.abort("active-selector", f"the active Service selects {where}, not the promoted v{self.spec.version}")
        return True

    def abort(self, key: str, reason: str) -> None:
        """The step's own rollback goes through the same intent as a user's or an alert's."""
        intent = RollbackIntent(self.spec.deployment, IntentSource.ROLLOUT, key, reason, self.now)
        self.update(intent=intent)
        self.begin_rollback()

    def promote_by_hand(self) -> None:
        """A person's promotion: past pre-promotion analysis to the switch, or past the bake to scale-down."""
        promotion = self.status.promotion
        assert promotion is not None
        analysed = self.status.paused_from if self.status.phase is Phase.PAUSED else self.status.phase
        promotable = (Phase.PRE_PROMOTION_ANALYSIS, Phase.BAKING, Phase.CANARY)
        if not self.status.phase.accepts_promotion or analysed not in promotable:
            self.update(promotion=None)  # the rollout moved on before the step saw it: nothing to skip
            return
        if analysed is Phase.CANARY and self.spec.strategy is not None:
            steps = self.spec.strategy.steps
            left = len(steps) - min(self.status.canary_step, len(steps))
            reason = (
                f"v{self.spec.version} promoted by hand past {left} remaining canary step(s) by {promotion.describe()}"
            )
            self.enter(Phase.CANARY, paused_from=None, inconclusive_since=None, reason="", promotion=None,
                       canary_step=len(steps), step_started_at=self.now)  # fmt: skip
            self.event(EventKind.PROMOTED_BY_HAND, reason)
            return
        target = Phase.PROMOTING if analysed is Phase.PRE_PROMOTION_ANALYSIS else Phase.SCALING_DOWN_OLD
        skipped = "pre-promotion analysis" if target is Phase.PROMOTING else "the bake"
        reason = f"v{self.spec.version} promoted by hand past {skipped} by {promotion.describe()}"
        self.enter(target, paused_from=None, inconclusive_since=None, reason="", promotion=None)
        self.event(EventKind.PROMOTED_BY_HAND, reason)

    def preview_traffic(self) -> None:
        """Keep green's load test running while it is analysed, and only then."""
        phase = self.status.paused_from if self.status.phase is Phase.PAUSED else self.status.phase
        wanted = self.spec.sends_preview_traffic and phase in _PREVIEW_TRAFFIC_PHASES
        if wanted and not self.observed.preview_traffic:
            spec = self.spec
            self.emit(
                StartPreviewTraffic(spec.version, spec.preview_traffic_rate, spec.preview_traffic_seconds,
                                    spec.sample_request_uri)
            )  # fmt: skip
        elif not wanted and self.observed.preview_traffic:
            self.emit(StopPreviewTraffic(self.spec.version))

    def begin_rollback(self) -> None:
        intent = self.status.intent
        assert intent is not None
        target = self.status.rollback_target
        where = f"to v{target}" if target is not None else "with no previous version"
        reason = f"rolling back {where}: {intent.describe()}"
        self.enter(Phase.ROLLING_BACK, paused_from=None, inconclusive_since=None, reason=reason, promotion=None)
        self.event(EventKind.ROLLBACK_STARTED, reason)


_PREVIEW_TRAFFIC_PHASES = frozenset({Phase.PRE_PROMOTION_ANALYSIS, Phase.PROMOTING, Phase.BAKING})


def _pending(step: ReconcileStep) -> None:
    previous = step.spec.previous_version
    if step.spec.strategy is not None:
        step.enter(Phase.CANARY, preview_version=step.spec.version, canary_step=0, canary_weight=0,
                   step_started_at=step.now)  # fmt: skip
        step.event(
            EventKind.STARTED,
            f"canary of v{step.spec.version} to replace v{previous}: {step.spec.strategy.describe()}",
        )
        return
    step.enter(Phase.DEPLOYING_PREVIEW, preview_version=step.spec.version)
    step.event(
        EventKind.STARTED,
        f"rolling out v{step.spec.version}" + (f" to replace v{previous}" if previous else " (first version)"),
    )


def _deploying_preview(step: ReconcileStep) -> None:
    green = step.spec.version
    if step.ready(green):
        if step.switch(ServiceRole.PREVIEW, green):
            step.enter(Phase.PRE_PROMOTION_ANALYSIS, inconclusive_since=None)
            step.event(EventKind.PREVIEW_READY, f"v{green} is ready and selected by the preview Service")
            return
        step.wait(step.spec.poll_interval_seconds)
        return
    if step.elapsed(step.status.phase_entered_at) >= step.spec.ready_timeout_seconds:
        blue = step.spec.previous_version
        step.abort(
            "ready-timeout",
            f"v{green} not ready after {step.spec.ready_timeout_seconds:.0f}s "
            f"({step.describe_readiness(green)})" + (f"; v{blue} keeps serving" if blue else ""),
        )
        return
    step.ensure(green)
    step.switch(ServiceRole.PREVIEW, green)
    deadline = step.status.phase_entered_at + timedelta(seconds=step.spec.ready_timeout_seconds)
    step.wait(step.spec.poll_interval_seconds, deadline)


def _pre_promotion_analysis(step: ReconcileStep) -> None:
    result = step.analyse(AnalysisStage.PRE_PROMOTION)
    if result.outcome is Outcome.FAILED:
        step.abort("pre-promotion-analysis", f"pre-promotion analysis of v{step.spec.version} {result.summary()}")
    elif result.outcome is Outcome.INCONCLUSIVE:
        step.note_inconclusive(result, Phase.PRE_PROMOTION_ANALYSIS)
    else:
        step.update(inconclusive_since=None)
        step.enter(Phase.PROMOTING)
        step.event(EventKind.ANALYSIS_PASSED, f"pre-promotion analysis of v{step.spec.version} {result.summary()}")


def _promoting(step: ReconcileStep) -> None:
    green = step.spec.version
    if step.observed.active_selector == green:
        step.enter(Phase.BAKING, active_version=green, promoted_at=step.now, inconclusive_since=None)
        step.event(EventKind.PROMOTED, f"active Service now selects v{green}; baking")
        return
    if step.ready(green):
        step.switch(ServiceRole.ACTIVE, green)
        step.wait(step.spec.poll_interval_seconds)
        return
    if step.elapsed(step.status.phase_entered_at) >= step.spec.ready_timeout_seconds:
        step.abort("ready-timeout", f"v{green} lost readiness before the switch ({step.describe_readiness(green)})")
        return
    step.ensure(green)  # never switch to a version that is not ready: wait for it
    step.wait(step.spec.poll_interval_seconds)


def _promoted_at(step: ReconcileStep) -> datetime:
    return step.status.promoted_at or step.status.phase_entered_at


def _baking(step: ReconcileStep) -> None:
    if step.lost_promotion():
        return
    result = step.analyse(AnalysisStage.POST_PROMOTION)
    if result.outcome is Outcome.FAILED:
        step.abort("post-promotion-analysis", f"post-promotion analysis of v{step.spec.version} {result.summary()}")
        return
    if result.outcome is Outcome.INCONCLUSIVE:
        step.note_inconclusive(result, Phase.BAKING)
        return
    step.update(inconclusive_since=None)
    bake_end = _promoted_at(step) + timedelta(seconds=step.spec.bake_seconds)
    if step.now >= bake_end:
        step.enter(Phase.SCALING_DOWN_OLD)
        step.event(EventKind.BAKED, f"v{step.spec.version} baked for {step.spec.bake_seconds:.0f}s; {result.summary()}")
    else:
        step.wait(step.spec.analysis_interval_seconds, bake_end)


def _scaling_down_old(step: ReconcileStep) -> None:
    if step.lost_promotion():
        return
    # Post-promotion checks still guard the warm window; missing data no longer holds it up.
    if step.spec.post_promotion and step.observed.analysis is not None:
        result = step.analyse(AnalysisStage.POST_PROMOTION)
        if result.outcome is Outcome.FAILED:
            step.abort("post-promotion-analysis", f"post-promotion analysis of v{step.spec.version} {result.summary()}")
            return
    blue = step.spec.previous_version
    warm_until = _rollback_window_end(step)
    warm = blue is not None and step.now < warm_until
    if blue is not None:
        scale_at = _promoted_at(step) + timedelta(seconds=step.spec.scale_down_delay_seconds)
        if step.now < scale_at:
            step.wait(step.spec.analysis_interval_seconds, scale_at)
            return
        if not step.scaled_down(blue, WARM_REPLICAS if warm else 0):
            step.wait(step.spec.poll_interval_seconds)
            return
    green = step.spec.version
    step.enter(Phase.COMPLETED, stable_version=green, reason="")
    step.emit(MarkLastKnownGood(green))
    if blue is None:
        kept = ""
    elif warm:
        kept = f"; v{blue} kept warm ({WARM_REPLICAS} replica) for a fast rollback until {warm_until.isoformat()}"
    else:
        kept = f"; v{blue} scaled to 0"
    step.event(EventKind.COMPLETED, f"v{green} is serving and last-known-good{kept}")


def _rollback_window_end(step: ReconcileStep) -> datetime:
    return _promoted_at(step) + timedelta(seconds=step.spec.rollback_window_seconds)


def _completed(step: ReconcileStep) -> None:
    """At rest, but blue may still be warm: once the rollback window has passed, scale it to 0."""
    blue = step.spec.previous_version
    seen = step.observed.deployments.get(blue) if blue is not None else None
    if blue is None or seen is None or seen.desired == 0 or step.observed.active_selector == blue:
        return
    warm_until = _rollback_window_end(step)
    if step.now < warm_until:
        step.wait((warm_until - step.now).total_seconds())
        return
    if not step.scaled_down(blue):
        step.event(
            EventKind.ROLLBACK_WINDOW_ENDED,
            f"v{blue} scaled to 0: its rollback window ({step.spec.rollback_window_seconds:.0f}s) is over; "
            "a rollback now re-creates it",
        )
        step.wait(step.spec.poll_interval_seconds)


def _paused(step: ReconcileStep) -> None:
    paused_from = step.status.paused_from or Phase.PRE_PROMOTION_ANALYSIS
    if paused_from is Phase.CANARY:
        from control.domain.canary_step import canary_paused

        canary_paused(step)
        return
    if paused_from is Phase.BAKING and step.lost_promotion():
        return
    stage = AnalysisStage.PRE_PROMOTION if paused_from is Phase.PRE_PROMOTION_ANALYSIS else AnalysisStage.POST_PROMOTION
    result = step.analyse(stage)
    if result.outcome is Outcome.FAILED:
        key = "pre-promotion-analysis" if stage is AnalysisStage.PRE_PROMOTION else "post-promotion-analysis"
        step.abort(key, f"{stage.value.lower().replace('_', '-')} analysis of v{step.spec.version} {result.summary()}")
    elif result.outcome is Outcome.PASSED:
        step.enter(paused_from, paused_from=None, reason="", inconclusive_since=None)
        step.event(EventKind.RESUMED, f"analysis data is back ({result.summary()}); resuming {paused_from.value}")
    else:
        step.wait(step.spec.analysis_interval_seconds)


def _rolling_back(step: ReconcileStep) -> None:
    green = step.spec.version
    target = step.status.rollback_target
    intent = step.status.intent
    cause = intent.describe() if intent else "rollback"
    if step.observed.canary_weight > 0:
        # A canary's abort: its weight returns to 0 at once, before anything else; the stable version
        # never stopped serving. The canary scales down once the Ingress no longer sends it requests.
        step.emit(SetTrafficWeight(green, 0))
        step.update(canary_weight=0)
        step.event(EventKind.WEIGHT_CHANGED, f"traffic to v{green} set to 0% at once: {cause}")
        if target is not None:
            step.ensure(target)
        step.wait(MIN_REQUEUE_SECONDS)
        return
    if step.status.canary_weight:
        step.update(canary_weight=0)
    if target is None:
        if step.observed.active_selector == green:
            reason = f"cannot roll back ({cause}): no previous version; v{green} keeps serving"
        elif step.scaled_down(green):
            reason = f"rollout of v{green} aborted ({cause}); there is no previous version to serve"
        else:
            step.wait(step.spec.poll_interval_seconds)
            return
        step.enter(Phase.FAILED, reason=reason)
        step.event(EventKind.FAILED, reason)
        return
    step.ensure(target)  # scales a warm previous version back up, or re-creates it if it was scaled away
    if step.observed.active_selector != target:
        # One ready replica takes the traffic at once (a warm last-known-good: the rollback is a
        # switch); the others start meanwhile, and green stays up until they are ready.
        if step.observed.ready(target, 1):
            step.switch(ServiceRole.ACTIVE, target)
        step.wait(step.spec.poll_interval_seconds)
        return
    step.update(active_version=target)
    if not step.ready(target) or not step.scaled_down(green):
        step.wait(step.spec.poll_interval_seconds)
        return
    if step.status.stable_version != target:
        step.emit(MarkLastKnownGood(target))
    reason = f"rolled back to v{target}: {cause}"
    step.enter(Phase.ROLLED_BACK, stable_version=target, reason=reason)
    step.event(EventKind.ROLLED_BACK, reason)


def _at_rest(step: ReconcileStep) -> None:
    """COMPLETED, ROLLED_BACK, FAILED: nothing to do until a rollback intent arrives."""


def _canary(step: ReconcileStep) -> None:
    from control.domain.canary_step import canary_phase  # it builds on this module's step

    canary_phase(step)


_HANDLERS = {
    Phase.PENDING: _pending,
    Phase.DEPLOYING_PREVIEW: _deploying_preview,
    Phase.PRE_PROMOTION_ANALYSIS: _pre_promotion_analysis,
    Phase.PROMOTING: _promoting,
    Phase.BAKING: _baking,
    Phase.SCALING_DOWN_OLD: _scaling_down_old,
    Phase.COMPLETED: _completed,
    Phase.PAUSED: _paused,
    Phase.CANARY: _canary,
    Phase.ROLLING_BACK: _rolling_back,
    Phase.ROLLED_BACK: _at_rest,
    Phase.FAILED: _at_rest,
}


def reconcile(spec: RolloutSpec, status: RolloutStatus, observed: Observed, now: datetime) -> Decision:
    """One step: from the recorded status and what is observed now, the actions and the next status.

    Phases that can move on with what is observed now do so in the same step (bounded), so a
    step returns the actions of the phase it ends in. The same inputs give the same decision;
    a step whose actions are already in effect emits no cluster action."""
    if (spec.deployment, spec.model, spec.version, spec.previous_version) != (
        status.deployment,
        status.model,
        status.target_version,
        status.previous_version,
    ):
        raise InvalidInput(
            f"rollout spec ({spec.deployment} v{spec.previous_version}→v{spec.version}) does not match the "
            f"recorded status ({status.deployment} v{status.previous_version}→v{status.target_version})",
            field="spec",
        )
    step = ReconcileStep(spec, status, observed, now)
    if step.status.intent is not None and step.status.phase.accepts_rollback:
        step.begin_rollback()
    elif step.status.promotion is not None:
        step.promote_by_hand()
    for _ in range(len(Phase)):
        phase = step.status.phase
        step.requeue = None
        _HANDLERS[phase](step)
        if step.status.phase is phase:
            break
    step.preview_traffic()
    new_status = step.status
    changed = new_status != status
    if changed:
        new_status = replace(new_status, revision=status.revision + 1)
    actions = list(step.actions)
    if new_status.phase.in_progress:
        actions.append(ScheduleRequeue(step.requeue or spec.poll_interval_seconds))
    elif step.requeue is not None:  # at rest with a chore left: the end of blue's rollback window
        actions.append(ScheduleRequeue(step.requeue))
    return Decision(tuple(actions), new_status, changed)
