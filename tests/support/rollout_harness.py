"""Shared by the rollout tests: a tiny in-memory cluster for driving the pure step (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from control.domain.rollout import (
    Action,
    AnalysisCheck,
    AnalysisSample,
    AnalysisStage,
    Comparison,
    Decision,
    EnsureDeployment,
    Observed,
    RolloutSpec,
    RolloutStatus,
    ScaleDeployment,
    ServiceRole,
    SetTrafficWeight,
    SwitchSelector,
    VersionObservation,
    reconcile,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
BLUE, GREEN, REPLICAS = 1, 2, 2

CHECKS = (
    AnalysisCheck("error-ratio", 'err_ratio{deployment="{deployment}",version="{version}"}', Comparison.LT, 0.05),
    AnalysisCheck("latency-p99", 'p99{deployment="{deployment}",version="{version}"}', Comparison.LT, 0.5),
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_spec(**changes: object) -> RolloutSpec:
    values: dict[str, object] = {
        "deployment": "iris-classifier",
        "model": "iris",
        "version": GREEN,
        "previous_version": BLUE,
        "replicas": REPLICAS,
        "pre_promotion": CHECKS,
        "post_promotion": CHECKS,
        "bake_seconds": 300.0,
        "scale_down_delay_seconds": 600.0,
        "rollback_window_seconds": 0.0,  # blue to 0 at the scale-down delay; the warm window has its own tests
        "ready_timeout_seconds": 120.0,
        "inconclusive_timeout_seconds": 60.0,
        "analysis_interval_seconds": 30.0,
        "poll_interval_seconds": 5.0,
    }
    values.update(changes)
    return RolloutSpec(**values)  # type: ignore[arg-type]


def sample(stage: AnalysisStage, error_ratio: float | None = 0.01, p99: float | None = 0.1,
           version: int = GREEN, error: str = "") -> AnalysisSample:  # fmt: skip
    return AnalysisSample(stage, version, {"error-ratio": error_ratio, "latency-p99": p99}, error)


PRE_GOOD = sample(AnalysisStage.PRE_PROMOTION)
PRE_BAD = sample(AnalysisStage.PRE_PROMOTION, error_ratio=0.4)
PRE_NO_DATA = sample(AnalysisStage.PRE_PROMOTION, None, None)
POST_GOOD = sample(AnalysisStage.POST_PROMOTION)
POST_BAD = sample(AnalysisStage.POST_PROMOTION, p99=2.5)
POST_NO_DATA = sample(AnalysisStage.POST_PROMOTION, None, None)


@dataclass
class Cluster:
    """Deployments, the Service selectors and the Ingress's canary weight; pods of a version become
    ready on `settle()`. Switching the active Service re-applies the Ingress with all traffic on it,
    as the use case does."""

    deployments: dict[int, VersionObservation] = field(
        default_factory=lambda: {BLUE: VersionObservation(REPLICAS, REPLICAS)}
    )
    active: int | None = BLUE
    preview: int | None = None
    broken: set[int] = field(default_factory=set)  # versions whose model never loads
    switches: list[tuple[ServiceRole, int, int]] = field(default_factory=list)  # (service, version, ready)
    canary: int | None = None
    weight: int = 0
    weights: list[int] = field(default_factory=list)  # every weight the Ingress was set to, in order

    def observed(self, analysis: AnalysisSample | None = None) -> Observed:
        return Observed(
            dict(self.deployments), self.active, self.preview, analysis, canary_selector=self.canary,
            canary_weight=self.weight,
        )  # fmt: skip

    def pods(self) -> int:
        return sum(seen.desired for seen in self.deployments.values())

    def apply(self, actions: tuple[Action, ...] | list[Action]) -> None:
        for action in actions:
            if isinstance(action, EnsureDeployment):
                seen = self.deployments.get(action.version, VersionObservation(0, 0))
                self.deployments[action.version] = replace(seen, desired=max(seen.desired, action.replicas))
            elif isinstance(action, ScaleDeployment):
                seen = self.deployments.get(action.version, VersionObservation(0, 0))
                self.deployments[action.version] = VersionObservation(action.replicas, min(seen.ready, action.replicas))
            elif isinstance(action, SwitchSelector):
                seen = self.deployments.get(action.version)
                self.switches.append((action.service, action.version, seen.ready if seen else 0))
                if action.service is ServiceRole.ACTIVE:
                    self.active = action.version
                    self.set_weight(0)
                elif action.service is ServiceRole.CANARY:
                    self.canary = action.version
                else:
                    self.preview = action.version
            elif isinstance(action, SetTrafficWeight):
                self.set_weight(action.weight)

    def set_weight(self, weight: int) -> None:
        if weight != self.weight:
            self.weights.append(weight)
        self.weight = weight

    def settle(self) -> None:
        """Pods start (or, for a broken version, never get ready)."""
        for version, seen in self.deployments.items():
            ready = 0 if version in self.broken else seen.desired
            self.deployments[version] = replace(seen, ready=ready)


def step(
    spec: RolloutSpec,
    status: RolloutStatus,
    cluster: Cluster,
    now: datetime,
    analysis: AnalysisSample | None = None,
    *,
    settle: bool = True,
) -> Decision:
    """One reconcile, its actions applied, and the pods given time to start."""
    decision = reconcile(spec, status, cluster.observed(analysis), now)
    cluster.apply(decision.actions)
    if settle:
        cluster.settle()
    return decision


def cluster_actions(decision: Decision) -> list[Action]:
    return [a for a in decision.actions if isinstance(a, (EnsureDeployment, ScaleDeployment, SwitchSelector))]
