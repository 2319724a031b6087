"""Properties of the canary step over random runs: flaky pods, missing or bad analysis, lost status
writes, half-applied steps, aborts and promotions at any moment."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control.domain.canary import Analysis, CanaryStrategy, Pause, SetWeight, canary_replicas, stable_replicas
from control.domain.rollout import (
    AnalysisSample,
    AnalysisStage,
    IntentSource,
    ManualPromotion,
    Phase,
    RollbackIntent,
    ScaleDeployment,
    ServiceRole,
    SetTrafficWeight,
    SwitchSelector,
    VersionObservation,
    reconcile,
    request_promotion,
    request_rollback,
    start_rollout,
)
from control.errors import Conflict
from tests.support.rollout_harness import BLUE, GREEN, Cluster, at, make_spec

R = 4
STRATEGY = CanaryStrategy((SetWeight(10), Pause(20), Analysis(), SetWeight(50), Pause(20), Analysis(), SetWeight(100)))
VALUES = {"good": (0.01, 0.01), "bad": (0.6, 0.01), "none": (None, None), "both-bad": (0.3, 0.3)}

TICK = st.fixed_dictionaries(
    {
        "seconds": st.sampled_from([0, 1, 5, 30, 200]),
        "settle": st.sampled_from([True, True, True, False]),
        "flap": st.sampled_from([None, None, None, BLUE, GREEN]),  # a pod of that version stops being ready
        "analysis": st.sampled_from(["good"] * 6 + ["bad", "none", "both-bad", "missing"]),
        "applied": st.sampled_from([None, None, None, 0, 1]),  # crash after this many actions
        "write_lost": st.sampled_from([False, False, False, True]),
        "user": st.sampled_from([None] * 12 + ["abort", "promote"]),
    }
)


def sample(kind: str) -> AnalysisSample | None:
    if kind == "missing":
        return None
    canary, stable = VALUES[kind]
    values = {"error-ratio": canary, "latency-p99": 0.1 if canary is not None else None}
    baseline = {"error-ratio": stable, "latency-p99": 0.1 if stable is not None else None}
    return AnalysisSample(AnalysisStage.CANARY, GREEN, values, baseline=baseline)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticks=st.lists(TICK, min_size=1, max_size=50))
def test_traffic_only_goes_where_pods_are_ready_and_stable_keeps_its_share(ticks) -> None:
    spec = make_spec(replicas=R, strategy=STRATEGY, scale_down_delay_seconds=30.0)
    world = Cluster(deployments={BLUE: VersionObservation(R, R)})
    status = start_rollout(spec, at(0))
    now = at(0)
    promoted = False
    for number, tick in enumerate(ticks):
        now += timedelta(seconds=tick["seconds"])
        if tick["settle"]:
            world.settle()
        if tick["flap"] is not None and tick["flap"] in world.deployments:
            seen = world.deployments[tick["flap"]]
            world.deployments[tick["flap"]] = VersionObservation(seen.desired, max(0, seen.ready - 1))
        try:
            if tick["user"] == "abort" and status.phase in (Phase.CANARY, Phase.PAUSED):
                intent = RollbackIntent(spec.deployment, IntentSource.USER, f"u{number}", "abort", now)
                status = request_rollback(status, intent)
            elif tick["user"] == "promote":
                status = request_promotion(status, ManualPromotion(spec.deployment, f"p{number}", "a", "go", now))
        except Conflict:
            pass
        observed = world.observed(sample(tick["analysis"]))
        decision = reconcile(spec, status, observed, now)
        assert reconcile(spec, status, observed, now) == decision, "the step is not deterministic"
        actions = decision.actions if tick["applied"] is None else decision.actions[: tick["applied"]]
        for action in actions:
            if isinstance(action, SetTrafficWeight) and action.weight > 0:
                # the canary gets a share only once the pods for it are ready, and its Service selects it
                assert observed.ready(GREEN, canary_replicas(action.weight, R)), (action, observed)
                assert world.canary == GREEN
            if isinstance(action, ScaleDeployment) and action.version == BLUE and world.active == BLUE:
                # stable gives up pods only for the share the canary has taken over
                assert action.replicas >= stable_replicas(world.weight, R), (action, world.weight)
            if isinstance(action, SwitchSelector) and action.service is ServiceRole.ACTIVE and action.version == GREEN:
                assert observed.ready(GREEN, R), "the canary was promoted before it had all its pods"
                promoted = True
            world.apply([action])
        if tick["applied"] is None and not tick["write_lost"]:
            status = decision.status
        if status.phase in (Phase.ROLLED_BACK, Phase.FAILED):
            assert world.weight == 0 and world.active == BLUE
            assert not promoted or status.intent is not None
    # Left alone with good data and pods that start, every run comes to rest.
    for _ in range(200):
        if not status.phase.in_progress:
            break
        now += timedelta(seconds=5)
        world.settle()
        decision = reconcile(spec, status, world.observed(sample("good")), now)
        world.apply(decision.actions)
        status = decision.status
    assert not status.phase.in_progress, status
    if status.phase is Phase.COMPLETED:
        assert world.active == GREEN and world.weight == 0
    else:
        assert status.phase is Phase.ROLLED_BACK and world.active == BLUE and world.weight == 0
        assert world.deployments[GREEN].desired == 0 and world.deployments[BLUE].desired >= R
