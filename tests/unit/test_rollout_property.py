"""Properties of the reconcile step over random runs: flaky pods, missing data, crashes, rollbacks."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control.domain.rollout import (
    AnalysisStage,
    IntentSource,
    Phase,
    RecordEvent,
    RollbackIntent,
    ScaleDeployment,
    ServiceRole,
    SwitchSelector,
    VersionObservation,
    analysis_request,
    reconcile,
    request_rollback,
    start_rollout,
)
from tests.support.rollout_harness import BLUE, GREEN, REPLICAS, Cluster, at, cluster_actions, make_spec, sample

# Biased towards progress, so that runs reach promotion, the bake and beyond, not only the start.
ANALYSIS = st.sampled_from(["good"] * 5 + ["none", "bad", "no-data", "unreachable", "wrong-stage"])

TICK = st.fixed_dictionaries(
    {
        "seconds": st.sampled_from([0, 1, 5, 30, 90, 400]),
        "settle": st.booleans(),  # pods that were asked for start
        "ready": st.dictionaries(st.sampled_from([BLUE, GREEN]), st.sampled_from([0, 1, REPLICAS]), max_size=2),
        "analysis": ANALYSIS,
        "apply": st.lists(st.sampled_from([True, True, True, False]), min_size=6, max_size=6),
        "write_lost": st.sampled_from([False, False, False, True]),  # crash before the status write
        "rollback": st.integers(0, 7),  # 0: a user or an alert asks for a rollback
    }
)


def sample_for(kind: str, stage: AnalysisStage):
    if kind == "none":
        return None
    if kind == "wrong-stage":
        other = AnalysisStage.POST_PROMOTION if stage is AnalysisStage.PRE_PROMOTION else AnalysisStage.PRE_PROMOTION
        return sample(other)
    return {
        "good": sample(stage),
        "bad": sample(stage, error_ratio=0.9),
        "no-data": sample(stage, None, None),
        "unreachable": sample(stage, None, None, error="Prometheus unreachable"),
    }[kind]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticks=st.lists(TICK, min_size=1, max_size=40), first_rollout=st.booleans())
def test_traffic_only_ever_moves_to_a_ready_version_and_steps_are_repeatable(ticks, first_rollout) -> None:
    spec = make_spec(previous_version=None) if first_rollout else make_spec()
    status = start_rollout(spec, at(0))
    cluster = Cluster(deployments={}, active=None) if first_rollout else Cluster()
    now = at(0)
    for tick in ticks:
        now += timedelta(seconds=tick["seconds"])
        if tick["settle"]:
            cluster.settle()
        for version, ready in tick["ready"].items():  # pods come and go
            seen = cluster.deployments.get(version)
            if seen is not None:
                cluster.deployments[version] = VersionObservation(seen.desired, min(ready, seen.desired))
        if (
            tick["rollback"] == 0
            and status.phase.accepts_rollback
            and status.intent is None
            and (status.rollback_target is not None)
        ):
            status = request_rollback(
                status, RollbackIntent(spec.deployment, IntentSource.ALERT, f"fp@{now}", "alert firing", now)
            )
        request = analysis_request(spec, status)
        stage = request.stage if request else AnalysisStage.PRE_PROMOTION
        observed = cluster.observed(sample_for(tick["analysis"], stage))

        decision = reconcile(spec, status, observed, now)

        # Traffic never moves to a version that is not ready (a promotion: all its replicas; a rollback,
        # to leave a failing version at once: at least one), and the serving version is never scaled away.
        for action in decision.actions:
            if isinstance(action, SwitchSelector) and action.service is ServiceRole.ACTIVE:
                seen = observed.deployments.get(action.version)
                needed = 1 if decision.status.phase is Phase.ROLLING_BACK else REPLICAS
                assert seen is not None and seen.ready >= needed > 0, (action, observed)
            if isinstance(action, ScaleDeployment) and action.replicas == 0:
                assert action.version != observed.active_selector, (action, observed)
        # Pure: the same inputs give the same decision.
        assert reconcile(spec, status, observed, now) == decision
        # Repeating the step with what it recorded and the same observations adds nothing.
        again = reconcile(spec, decision.status, observed, now)
        assert not again.changed
        assert not [a for a in again.actions if isinstance(a, RecordEvent)]
        assert cluster_actions(again) == cluster_actions(decision)
        # Only a version this rollout owns is ever touched.
        assert {getattr(a, "version", GREEN) for a in decision.actions} <= {BLUE, GREEN}

        cluster.apply([a for a, applied in zip(decision.actions, tick["apply"] * 3, strict=False) if applied])
        if not tick["write_lost"]:
            status = decision.status
        assert status.phase in Phase

    # Whatever happened, a settled rollout leaves traffic on a version with ready pods.
    for _ in range(60):
        cluster.settle()
        now += timedelta(seconds=30)
        request = analysis_request(spec, status)
        decision = reconcile(spec, status, cluster.observed(sample(request.stage) if request else None), now)
        cluster.apply(decision.actions)
        status = decision.status
        if not status.phase.in_progress:
            break
    assert not status.phase.in_progress, status
    cluster.settle()
    if cluster.active is not None:
        assert cluster.deployments[cluster.active].ready >= REPLICAS
    if status.phase is Phase.ROLLED_BACK:
        assert cluster.active == BLUE
    if status.phase is Phase.COMPLETED:
        assert cluster.active == GREEN
