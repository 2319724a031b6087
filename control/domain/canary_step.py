"""The CANARY phase of the reconcile step: traffic shifts to the new version by weight, step by step.

At step i of the strategy:

- setWeight w: the canary's Deployment gets ceil(w x replicas) pods; once they are ready and the
  canary Service selects it, the Ingress sends it w % of the requests; once that split is observed,
  the stable side scales down to what it still serves (never below one pod) and the step is done.
  The weight is recorded only once observed, so a crash anywhere resumes with the weight last
  applied (and a split that drifted is put back).
- pause: hold the weight for its duration; the canary is analysed meanwhile and a failure aborts.
- analysis: the canary against the stable version on the same window; failed aborts, passed moves
  on, no verdict waits and pauses the rollout after the inconclusive timeout.

After the last step (or a manual promotion) the active Service selects the canary, which takes all
the traffic, and the rollout goes on to SCALING_DOWN_OLD as a blue-green one does. An abort (a
failed analysis, an alert for the canary's version, a user) is a rollback intent: ROLLING_BACK sets
the weight to 0 at once and scales the canary down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from control.domain.canary import Analysis, CanaryStrategy, Pause, SetWeight, canary_replicas, stable_replicas
from control.domain.rollout import (
    MIN_REQUEUE_SECONDS,
    AnalysisRequest,
    AnalysisResult,
    AnalysisStage,
    EnsureDeployment,
    EventKind,
    Outcome,
    Phase,
    ReconcileStep,
    RolloutSpec,
    RolloutStatus,
    ScaleDeployment,
    ServiceRole,
    SetTrafficWeight,
)
from control.domain.rollout_analysis import AnalysisCheck, evaluate_against_baseline


def _strategy(spec: RolloutSpec) -> CanaryStrategy:
    assert spec.strategy is not None, "the CANARY phase needs a canary strategy"
    return spec.strategy


def canary_checks(spec: RolloutSpec, status: RolloutStatus) -> tuple[AnalysisCheck, ...]:
    """The current step's own checks, then the deployment's policy (the rollout's post-promotion checks:
    error ratio, p99 latency and any model metric in it) for every name the step does not check itself,
    so a step that tightens one check still compares the canary on the policy's model metrics."""
    steps = _strategy(spec).steps
    current = steps[status.canary_step] if status.canary_step < len(steps) else None
    own = current.checks if isinstance(current, Analysis) and current.checks is not None else ()
    named = {check.name for check in own}
    return own + tuple(check for check in spec.post_promotion if check.name not in named)


def canary_analysis_request(spec: RolloutSpec, status: RolloutStatus) -> AnalysisRequest | None:
    """While the canary has traffic: each check for the canary and for stable, on the same window."""
    checks = canary_checks(spec, status)
    stable = spec.previous_version
    if status.canary_weight <= 0 or stable is None or not checks:
        return None
    render = {"deployment": spec.deployment, "model": spec.model}
    return AnalysisRequest(
        AnalysisStage.CANARY,
        spec.version,
        {check.name: check.render(**render, version=spec.version) for check in checks},
        {check.name: check.render(**render, version=stable) for check in checks},
    )


def analyse_canary(step: ReconcileStep) -> AnalysisResult:
    checks = canary_checks(step.spec, step.status)
    sample = step.observed.analysis
    usable = sample is not None and sample.stage is AnalysisStage.CANARY and sample.version == step.spec.version
    values = sample.values if usable and sample else {}
    baseline = sample.baseline if usable and sample else {}
    error = sample.error if usable and sample else ("" if not checks else "no measurements yet")
    if usable and not error and checks and all(values.get(check.name) is None for check in checks):
        error = step.no_requests(AnalysisStage.CANARY, checks)
    result = evaluate_against_baseline(checks, values, baseline, version=step.spec.version, now=step.now, error=error)
    step.update(last_analysis=result)
    return result


def _advance(step: ReconcileStep, message: str) -> None:
    steps = _strategy(step.spec).steps
    index = step.status.canary_step
    step.update(canary_step=index + 1, step_started_at=step.now, inconclusive_since=None)
    step.event(
        EventKind.CANARY_STEP, f"canary step {index + 1}/{len(steps)} ({steps[index].describe()}) done: {message}"
    )


def _abort(step: ReconcileStep, result: AnalysisResult) -> None:
    index = step.status.canary_step
    step.abort(
        "canary-analysis",
        f"canary analysis of v{step.spec.version} at {step.status.canary_weight}% "
        f"(step {index + 1}) {result.summary()}",
    )


def _repair_weight(step: ReconcileStep) -> bool:
    """Keep the Ingress at the weight last recorded; True when it already is."""
    if step.observed.canary_weight == step.status.canary_weight:
        return True
    step.emit(SetTrafficWeight(step.spec.version, step.status.canary_weight))
    return False


def _ready_timed_out(step: ReconcileStep, wanted: int) -> bool:
    started = step.status.step_started_at or step.status.phase_entered_at
    if step.elapsed(started) < step.spec.ready_timeout_seconds:
        return False
    seen = step.observed.deployments.get(step.spec.version)
    ready = 0 if seen is None else seen.ready
    step.abort(
        "ready-timeout",
        f"canary v{step.spec.version} not ready after {step.spec.ready_timeout_seconds:.0f}s "
        f"({ready}/{wanted} replicas ready); v{step.spec.previous_version} keeps serving",
    )
    return True


def _set_weight(step: ReconcileStep, weight: int) -> bool:
    """Move to `weight`; True once the split is observed and stable scaled to its share."""
    green, blue, replicas = step.spec.version, step.spec.previous_version, step.spec.replicas
    wanted = canary_replicas(weight, replicas)
    seen = step.observed.deployments.get(green)
    if wanted and not step.observed.ready(green, wanted):
        # The timeout first: an aborted canary must not be asked for pods on its way out.
        if not _ready_timed_out(step, wanted):
            if seen is None or seen.desired < wanted:
                step.emit(EnsureDeployment(green, wanted))
            _repair_weight(step)
            started = step.status.step_started_at or step.now
            step.wait(step.spec.poll_interval_seconds, started + timedelta(seconds=step.spec.ready_timeout_seconds))
        return False
    if not step.switch(ServiceRole.CANARY, green):
        step.wait(MIN_REQUEUE_SECONDS)
        return False
    if step.observed.canary_weight != weight:
        # Stable keeps its pods until the split is seen: it scales down only as the canary takes over.
        step.emit(SetTrafficWeight(green, weight))
        step.wait(MIN_REQUEUE_SECONDS)
        return False
    if step.status.canary_weight != weight:
        before = step.status.canary_weight
        step.update(canary_weight=weight)
        step.event(
            EventKind.WEIGHT_CHANGED,
            f"traffic to v{green} {before}% → {weight}% (canary step {step.status.canary_step + 1}: setWeight)",
        )
    keep = stable_replicas(weight, replicas)
    stable = step.observed.deployments.get(blue) if blue is not None else None
    if blue is not None and stable is not None and stable.desired > keep:
        step.emit(ScaleDeployment(blue, keep))
    return True


def _background_analysis_failed(step: ReconcileStep) -> bool:
    """While the canary has traffic, a failed analysis aborts whatever the step (no verdict is fine)."""
    if step.status.canary_weight <= 0 or step.observed.analysis is None:
        return False
    result = analyse_canary(step)
    if result.outcome is Outcome.FAILED:
        _abort(step, result)
        return True
    return False


def _promote(step: ReconcileStep) -> None:
    """All steps done: the canary at full size, the active Service selects it, the split goes back to
    one Service (the switch applies the Ingress); then the blue-green scale-down of the old version."""
    green = step.spec.version
    if step.observed.active_selector == green and step.observed.canary_weight == 0:
        step.enter(Phase.SCALING_DOWN_OLD, active_version=green, promoted_at=step.now, canary_weight=0,
                   inconclusive_since=None)  # fmt: skip
        step.event(EventKind.PROMOTED, f"canary v{green} promoted: the active Service selects it, all traffic")
        return
    if step.observed.active_selector == green:  # switched, but the split was not reset (a crash in between)
        step.emit(SetTrafficWeight(green, 0))
        step.wait(MIN_REQUEUE_SECONDS)
        return
    if not step.ready(green):
        if not _ready_timed_out(step, step.spec.replicas):
            seen = step.observed.deployments.get(green)
            if seen is None or seen.desired < step.spec.replicas:
                step.emit(EnsureDeployment(green, step.spec.replicas))
            step.wait(step.spec.poll_interval_seconds)
        return
    step.switch(ServiceRole.ACTIVE, green)
    step.wait(MIN_REQUEUE_SECONDS)


def canary_phase(step: ReconcileStep) -> None:
    steps = _strategy(step.spec).steps
    for _ in range(len(steps) + 1):  # steps that are done now move on in the same reconcile
        index = step.status.canary_step
        # Already switched (a crash lost the status write after the promotion's switch): finish it.
        if index >= len(steps) or step.observed.active_selector == step.spec.version:
            _promote(step)
            return
        current = steps[index]
        if isinstance(current, SetWeight):
            if not _set_weight(step, current.weight):
                return
            _advance(step, f"{current.weight}% of the requests go to v{step.spec.version}")
            continue
        if not _repair_weight(step):
            step.wait(MIN_REQUEUE_SECONDS)
            return
        if isinstance(current, Pause):
            if _background_analysis_failed(step):
                return
            end = (step.status.step_started_at or step.now) + timedelta(seconds=current.seconds)
            if step.now < end:
                step.wait(step.spec.analysis_interval_seconds, end)
                return
            _advance(step, f"held {step.status.canary_weight}% for {current.seconds:g}s")
            continue
        result = analyse_canary(step)
        if result.outcome is Outcome.FAILED:
            _abort(step, result)
            return
        if result.outcome is Outcome.INCONCLUSIVE:
            step.note_inconclusive(result, Phase.CANARY)
            return
        _advance(step, result.summary())
    _promote(step)


def canary_paused(step: ReconcileStep) -> None:
    """Paused on an analysis without a verdict: a failure aborts, a verdict resumes the steps."""
    if not _repair_weight(step):
        step.wait(MIN_REQUEUE_SECONDS)
        return
    result = analyse_canary(step)
    if result.outcome is Outcome.FAILED:
        _abort(step, result)
    elif result.outcome is Outcome.PASSED:
        step.enter(Phase.CANARY, paused_from=None, reason="", inconclusive_since=None)
        step.event(EventKind.RESUMED, f"canary analysis data is back ({result.summary()}); resuming the steps")
    else:
        step.wait(step.spec.analysis_interval_seconds)


@dataclass(frozen=True)
class CanaryProgress:
    """Where a canary stands, for people: its weight, its step, the step's analysis, the time to the next."""

    weight: int
    step: int  # 1-based; steps + 1 while it is being promoted
    steps: int
    current: str  # the current step in words, or "promotion"
    analysis: AnalysisResult | None  # the last canary analysis
    next_step_in_seconds: float | None  # a pause's time left; None when the step waits on something else
    waiting_for: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "step": self.step,
            "steps": self.steps,
            "current": self.current,
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
            "next_step_in_seconds": None if self.next_step_in_seconds is None else round(self.next_step_in_seconds, 1),
            "waiting_for": self.waiting_for,
        }


def canary_progress(spec: RolloutSpec, status: RolloutStatus, now: datetime) -> CanaryProgress | None:
    if spec.strategy is None:
        return None
    steps = spec.strategy.steps
    index = status.canary_step
    analysis = (
        status.last_analysis if status.last_analysis and status.last_analysis.stage is AnalysisStage.CANARY else None
    )
    current = steps[index] if index < len(steps) else None
    left: float | None = None
    if status.phase is Phase.PAUSED:
        waiting = f"paused: {status.reason}"
    elif status.phase is not Phase.CANARY:
        waiting = f"{status.phase.value.lower().replace('_', ' ')}" + (f": {status.reason}" if status.reason else "")
    elif isinstance(current, Pause):
        end = (status.step_started_at or now) + timedelta(seconds=current.seconds)
        left = max(0.0, (end - now).total_seconds())
        waiting = f"holding {status.canary_weight}% for {current.seconds:g}s"
    elif isinstance(current, Analysis):
        waiting = "a verdict of the canary analysis (canary vs stable)"
    elif isinstance(current, SetWeight):
        waiting = (
            f"{canary_replicas(current.weight, spec.replicas)} ready canary pod(s), then the split at {current.weight}%"
        )
    else:
        waiting = f"v{spec.version} at {spec.replicas} ready pods, then the switch of the active Service"
    return CanaryProgress(
        weight=status.canary_weight,
        step=index + 1,
        steps=len(steps),
        current=current.describe() if current is not None else "promotion",
        analysis=analysis,
        next_step_in_seconds=left,
        waiting_for=waiting,
    )
