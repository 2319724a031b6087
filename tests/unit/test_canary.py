"""Canary rollouts through the pure reconcile step: every step kind, abort, promote, capacity, crashes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.domain.canary import (
    MAX_CANARY_SECONDS,
    Analysis,
    CanaryStrategy,
    Pause,
    SetWeight,
    canary_replicas,
    parse_strategy,
    stable_replicas,
)
from control.domain.rollout import (
    AnalysisSample,
    AnalysisStage,
    EventKind,
    IntentSource,
    ManualPromotion,
    Outcome,
    Phase,
    RecordEvent,
    RollbackIntent,
    RolloutSpec,
    ScaleDeployment,
    ScheduleRequeue,
    SetTrafficWeight,
    VersionObservation,
    analysis_request,
    reconcile,
    request_promotion,
    request_rollback,
    start_rollout,
)
from control.domain.rollout_analysis import AnalysisCheck, Comparison
from control.errors import InvalidInput
from tests.support.rollout_harness import BLUE, CHECKS, GREEN, Cluster, at, make_spec, step

STEPS = CanaryStrategy((SetWeight(10), Pause(30), Analysis(), SetWeight(50), Pause(30), Analysis(), SetWeight(100)))
R = 4


def canary_spec(**changes: object) -> RolloutSpec:
    return make_spec(replicas=R, strategy=STEPS, scale_down_delay_seconds=60.0, **changes)


def cluster() -> Cluster:
    return Cluster(deployments={BLUE: VersionObservation(R, R)})


def canary_sample(error_ratio: float | None = 0.01, stable_error_ratio: float | None = 0.01, error: str = ""):
    return AnalysisSample(
        AnalysisStage.CANARY,
        GREEN,
        {"error-ratio": error_ratio, "latency-p99": 0.1},
        error,
        baseline={"error-ratio": stable_error_ratio, "latency-p99": 0.1},
    )


GOOD, BAD, NO_DATA = canary_sample(), canary_sample(0.5), canary_sample(None, None)


def run(spec, status, world, start, seconds, analysis=GOOD, *, limit=200, until=None):
    """Step every `seconds` until the rollout rests (or `until(status)`); returns status, time, decisions."""
    now, decisions = start, []
    for _ in range(limit):
        decision = step(spec, status, world, now, analysis if status.canary_weight else None)
        decisions.append(decision)
        status = decision.status
        if not status.phase.in_progress or (until and until(status)):
            return status, now, decisions
        now += timedelta(seconds=seconds)
    raise AssertionError(f"no rest after {limit} steps: {status.phase} {status.reason}")


def cluster_actions(decision) -> list[object]:
    return [a for a in decision.actions if not isinstance(a, (RecordEvent, ScheduleRequeue))]


def events(decisions, kind: EventKind) -> list[str]:
    return [a.message for d in decisions for a in d.actions if isinstance(a, RecordEvent) and a.kind is kind]


# ------------------------------------------------------------------------------- strategy input


def test_steps_and_the_shorthand_parse_to_the_same_strategy() -> None:
    steps = parse_strategy(
        {"type": "canary", "steps": [{"setWeight": 10}, {"pause": "30s"}, {"analysis": {}}, {"setWeight": 100}]}
    )
    shorthand = parse_strategy({"type": "canary", "weights": "10,100", "step_pause": "30s"})
    assert steps == shorthand == CanaryStrategy((SetWeight(10), Pause(30), Analysis(), SetWeight(100)))
    assert parse_strategy("blueGreen") is None and parse_strategy({"type": "blueGreen"}) is None
    assert parse_strategy(steps.to_dict()) == steps  # round trip through the recorded spec


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "canary", "steps": [{"setWeight": 101}]}, "strategy.steps[0].setWeight"),
        ({"type": "canary", "steps": [{"setWeight": -1}]}, "strategy.steps[0].setWeight"),
        ({"type": "canary", "steps": [{"setWeight": 50}, {"setWeight": 20}]}, "strategy.steps[1].setWeight"),
        ({"type": "canary", "steps": [{"setWeight": 50}, {"setWeight": 50}]}, "strategy.steps[1].setWeight"),
        ({"type": "canary", "steps": [{"setWeight": w} for w in range(1, 22)]}, "strategy.steps"),
        (
            {"type": "canary", "steps": [{"setWeight": 5}, {"pause": f"{MAX_CANARY_SECONDS + 1}s"}]},
            "strategy.steps[1].pause",
        ),  # fmt: skip
        ({"type": "canary", "steps": [{"setWeight": 5}, {"pause": "8h"}, {"pause": "8h"}]}, "strategy.steps[2].pause"),
        ({"type": "canary", "steps": [{"pause": "10s"}, {"analysis": {}}]}, "strategy.steps[1].analysis"),
        ({"type": "canary", "steps": [{"setWeight": 5}, {"pause": "soon"}]}, "strategy.steps[1].pause"),
        ({"type": "canary", "steps": [{"setWeight": 5, "pause": "1s"}]}, "strategy.steps[0]"),
        ({"type": "canary", "steps": []}, "strategy.steps"),
        ({"type": "canary", "weights": "10,5"}, "strategy.weights"),
        ({"type": "canary", "weights": "10,500"}, "strategy.weights"),
        ({"type": "canary", "weights": "10,50", "step_pause": "13h"}, "strategy.step_pause"),
        ({"type": "linear"}, "strategy.type"),
    ],
)
def test_bad_strategies_are_rejected_naming_the_field(raw, field) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_strategy(raw)
    assert caught.value.field == field


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["30s", "10,50,100", "²", "1e999", "canary", "blueGreen", "setWeight", "pause"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["type", "steps", "weights", "step_pause", "setWeight", "pause", "analysis", "checks", "x"]
            ),
            children,
            max_size=4,
        )
    ),  # fmt: skip
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(raw=JSON)
def test_any_strategy_input_parses_or_is_a_400_naming_a_strategy_field(raw) -> None:
    try:
        parsed = parse_strategy(raw)
    except InvalidInput as error:
        assert error.field and error.field.startswith("strategy"), error.field
        return
    assert parsed is None or isinstance(parsed, CanaryStrategy)


def test_a_canary_needs_a_stable_version() -> None:
    with pytest.raises(InvalidInput) as caught:
        RolloutSpec.parse(
            {"deployment": "d", "model": "m", "version": 1, "strategy": {"type": "canary", "weights": [10, 100]}}
        )
    assert caught.value.field == "strategy"


def test_capacity_follows_the_weight() -> None:
    assert canary_replicas(10, 10) == 1 and stable_replicas(10, 10) == 9
    assert canary_replicas(50, 4) == 2 and stable_replicas(50, 4) == 2
    assert canary_replicas(0, 4) == 0 and stable_replicas(100, 4) == 1  # stable keeps one until promotion
    assert all(canary_replicas(w, 4) + stable_replicas(w, 4) <= 5 for w in range(101))


# ------------------------------------------------------------------------------- the happy path


def test_a_healthy_canary_walks_its_steps_to_full_traffic_without_double_capacity() -> None:
    spec, world = canary_spec(), cluster()
    status = start_rollout(spec, at(0))
    peak, shares = 0, []
    now, decisions = at(0), []
    while status.phase.in_progress and now < at(3600):
        decision = step(spec, status, world, now, GOOD if status.canary_weight else None)
        decisions.append(decision)
        status = decision.status
        peak = max(peak, world.pods())
        if world.weight:  # each side has the pods for its share of the traffic
            assert world.deployments[GREEN].desired >= canary_replicas(world.weight, R)
            assert world.deployments[BLUE].desired >= stable_replicas(world.weight, R)
            shares.append(world.weight)
        now += timedelta(seconds=5)
    assert status.phase is Phase.COMPLETED and status.stable_version == GREEN
    assert world.active == GREEN and world.weight == 0  # promoted: one Service, all traffic on the canary
    assert world.weights == [10, 50, 100, 0]
    # A step adds the canary pods for its new share before stable gives up its old share: the peak
    # is stable at 90 % + canary at 50 % (4 + 2), below blue-green's 2 x R.
    assert peak == stable_replicas(10, R) + canary_replicas(50, R) == 6 < 2 * R
    assert world.deployments[BLUE].desired == 0
    changes = events(decisions, EventKind.WEIGHT_CHANGED)
    assert [c.split("(")[0].strip() for c in changes] == [f"traffic to v{GREEN} {a}% → {b}%" for a, b in
                                                          [(0, 10), (10, 50), (50, 100)]]  # fmt: skip
    assert len(events(decisions, EventKind.CANARY_STEP)) == len(STEPS.steps)


def test_the_weight_moves_only_once_the_canary_pods_are_ready() -> None:
    spec, world = canary_spec(), cluster()
    world.broken.add(GREEN)
    status = start_rollout(spec, at(0))
    for second in range(0, 60, 5):
        status = step(spec, status, world, at(second)).status
    assert world.weights == [] and status.phase is Phase.CANARY and status.canary_weight == 0
    status = step(spec, status, world, at(spec.ready_timeout_seconds + 1)).status
    assert status.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK) and "not ready" in status.intent.reason


def test_pause_holds_the_weight_for_its_duration() -> None:
    spec, world = canary_spec(), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 1, until=lambda s: s.canary_step == 1)
    held = now
    status, now, _ = run(spec, status, world, now, 1, None, until=lambda s: s.canary_step == 2)
    assert 30 <= (now - held).total_seconds() <= 31 and world.weight == 10


def test_analysis_compares_the_canary_with_stable_on_the_same_window() -> None:
    spec, world = canary_spec(), cluster()
    at_analysis = lambda s: s.canary_step == 2  # noqa: E731
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, None, until=at_analysis)
    request = analysis_request(spec, status)
    assert request is not None and request.stage is AnalysisStage.CANARY
    assert f'version="{GREEN}"' in request.queries["error-ratio"]
    assert (
        request.queries["error-ratio"].replace(f'version="{GREEN}"', f'version="{BLUE}"')
        == (request.baseline_queries["error-ratio"])
    )
    # Both versions break the threshold alike (a shared dependency): no verdict, not an abort.
    both_bad = canary_sample(0.3, 0.3)
    decision = reconcile(spec, status, world.observed(both_bad), now)
    assert decision.status.phase is Phase.CANARY and decision.status.last_analysis.outcome is Outcome.INCONCLUSIVE
    decision = reconcile(spec, status, world.observed(GOOD), now)
    assert decision.status.canary_step == 3 and decision.status.last_analysis.checks[0].baseline == 0.01


def test_an_analysis_without_data_pauses_and_resumes_on_data() -> None:
    spec, world = canary_spec(), cluster()
    at_analysis = lambda s: s.canary_step == 2  # noqa: E731
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, None, until=at_analysis)
    status, now, _ = run(spec, status, world, now, 5, NO_DATA, until=lambda s: s.phase is Phase.PAUSED)
    assert "inconclusive" in status.reason and world.weight == 10  # the canary keeps its share
    decision = step(spec, status, world, now + timedelta(seconds=5), GOOD)
    assert decision.status.phase is Phase.CANARY and decision.status.canary_step == 3


# ------------------------------------------------------------------------------------- abort


def test_a_faulty_canary_is_aborted_at_its_first_step_and_never_promoted() -> None:
    spec, world = canary_spec(), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, until=lambda s: s.canary_weight == 10)
    decision = step(spec, status, world, now + timedelta(seconds=5), BAD)
    assert decision.status.phase is Phase.ROLLING_BACK
    assert cluster_actions(decision)[0] == SetTrafficWeight(GREEN, 0)  # the weight returns to 0 first, at once
    assert world.weight == 0 and world.active == BLUE  # stable never stopped serving
    status, now, decisions = run(spec, decision.status, world, now + timedelta(seconds=6), 1, None)
    assert status.phase is Phase.ROLLED_BACK and status.stable_version == BLUE
    assert world.deployments[GREEN].desired == 0 and world.deployments[BLUE].desired == R
    assert world.weights == [10, 0] and GREEN not in (s[1] for s in world.switches if s[0].value == "active")
    assert "canary analysis" in status.reason and "error-ratio=0.5" in status.reason


def test_an_alert_for_the_canary_aborts_the_same_way() -> None:
    spec, world = canary_spec(), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, until=lambda s: s.canary_weight == 50)
    assert GREEN in status.serving_versions  # the alert path acts on the canary's version
    intent = RollbackIntent(spec.deployment, IntentSource.ALERT, "fp@t", "ModelErrorRate firing", now)
    status = request_rollback(status, intent)
    decision = step(spec, status, world, now, GOOD)
    assert cluster_actions(decision)[0] == SetTrafficWeight(GREEN, 0) and world.weight == 0
    # The stable side was at half size: it is scaled back to full before the rollout rests.
    status, _, _ = run(spec, decision.status, world, now + timedelta(seconds=1), 1, None)
    assert status.phase is Phase.ROLLED_BACK and world.deployments[BLUE].desired == R


# ----------------------------------------------------------------------------------- promote


def test_promote_by_hand_skips_the_remaining_steps() -> None:
    spec, world = canary_spec(), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, until=lambda s: s.canary_weight == 10)
    promotion = ManualPromotion(spec.deployment, "req-1", "alice", "looks fine", now)
    status = request_promotion(status, promotion)
    status, _, decisions = run(spec, status, world, now, 1)
    assert status.phase is Phase.COMPLETED and world.active == GREEN and world.weight == 0
    assert world.weights == [10, 0]  # straight to the switch: no 50 % step
    assert events(decisions, EventKind.PROMOTED_BY_HAND)


# ------------------------------------------------------------------------- crash and resume


def _healthy_run(spec, crash_at: int | None, half: bool):
    """The healthy canary, with the step number `crash_at` applying its actions (all, or the first
    half) and then losing its status write: the next step starts from the old status."""
    world, status, now = cluster(), start_rollout(spec, at(0)), at(0)
    for number in range(400):
        decision = reconcile(spec, status, world.observed(GOOD if world.weight else None), now)
        actions = decision.actions[: len(decision.actions) // 2] if half and number == crash_at else decision.actions
        world.apply(actions)
        world.settle()
        if number != crash_at:
            status = decision.status
        if not status.phase.in_progress:
            return status, world
        now += timedelta(seconds=5)
    raise AssertionError("the rollout never rested")


@pytest.mark.parametrize("half", [False, True])
def test_a_crash_at_any_step_resumes_with_the_weight_last_applied(half) -> None:
    spec = canary_spec()
    reference, _ = _healthy_run(spec, None, half)
    steps = 0
    world, status, now = cluster(), start_rollout(spec, at(0)), at(0)
    while status.phase.in_progress:
        status = step(spec, status, world, now, GOOD if world.weight else None).status
        now += timedelta(seconds=5)
        steps += 1
    for crash_at in range(steps):
        final, world = _healthy_run(spec, crash_at, half)
        assert final.phase is reference.phase is Phase.COMPLETED, crash_at
        assert world.active == GREEN and world.weight == 0
        assert world.weights in ([10, 50, 100, 0],), (crash_at, world.weights)  # never back, never skipped


def test_a_drifted_split_is_put_back_to_the_recorded_weight() -> None:
    spec, world = canary_spec(), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, until=lambda s: s.canary_step == 1)
    world.set_weight(0)  # someone edited the Ingress
    decision = reconcile(spec, status, world.observed(GOOD), now + timedelta(seconds=1))
    assert SetTrafficWeight(GREEN, 10) in decision.actions


def test_a_step_whose_split_is_applied_emits_no_cluster_action() -> None:
    spec, world = canary_spec(), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, until=lambda s: s.canary_step == 1)
    decision = reconcile(spec, status, world.observed(GOOD), now + timedelta(seconds=1))
    assert not [a for a in decision.actions if isinstance(a, (SetTrafficWeight, ScaleDeployment))]


# ------------------------------------------------------------------------------- what people see


def test_progress_says_the_weight_the_step_and_the_time_to_the_next() -> None:
    from control.domain.canary_step import canary_progress

    spec, world = canary_spec(), cluster()
    status = start_rollout(spec, at(0))
    assert canary_progress(make_spec(), start_rollout(make_spec(), at(0)), at(0)) is None  # blue-green: none
    status = step(spec, status, world, at(0), settle=False).status
    waiting = canary_progress(spec, status, at(0))
    assert (waiting.weight, waiting.step, waiting.steps, waiting.current) == (0, 1, 7, "setWeight 10%")
    assert waiting.next_step_in_seconds is None and "1 ready canary pod(s)" in waiting.waiting_for
    status, now, _ = run(spec, status, world, at(5), 5, None, until=lambda s: s.canary_step == 1)
    pausing = canary_progress(spec, status, now + timedelta(seconds=12))
    assert (pausing.weight, pausing.current, pausing.next_step_in_seconds) == (10, "pause 30s", 18.0)
    assert pausing.to_dict()["next_step_in_seconds"] == 18.0


def test_an_aborted_canary_leaves_no_pod_even_when_the_abort_was_written_late() -> None:
    """Found by the property test: the step that saw the ready timeout asked for the canary's pods
    again on its way out (the scale-down before it had been applied, its status write lost)."""
    spec, world = canary_spec(), cluster()
    status = step(spec, start_rollout(spec, at(0)), world, at(0), settle=False).status
    world.deployments[GREEN] = VersionObservation(1, 0)  # its pod never gets ready
    lost = reconcile(spec, status, world.observed(), at(spec.ready_timeout_seconds + 1))
    world.apply(lost.actions)  # applied (the canary scaled to 0), but the status write is lost
    assert world.deployments[GREEN].desired == 0
    again = reconcile(spec, status, world.observed(), at(spec.ready_timeout_seconds + 2))
    world.apply(again.actions)
    assert again.status.phase is Phase.ROLLED_BACK and world.deployments[GREEN].desired == 0


# A model metric in the deployment's policy: the share of predictions of the majority class.
MAJORITY_SHARE = AnalysisCheck(
    "majority-class-share", 'majority_share{deployment="{deployment}",version="{version}"}', Comparison.LT, 0.8
)
TIGHT_ERRORS = AnalysisCheck(
    "error-ratio", 'err_ratio{deployment="{deployment}",version="{version}"}', Comparison.LT, 0.01
)


def model_metric_spec(step_checks: tuple[AnalysisCheck, ...] | None) -> RolloutSpec:
    strategy = CanaryStrategy((SetWeight(10), Pause(30), Analysis(step_checks), SetWeight(100)))
    return make_spec(replicas=R, strategy=strategy, scale_down_delay_seconds=60.0,
                     post_promotion=(*CHECKS, MAJORITY_SHARE))  # fmt: skip


@pytest.mark.parametrize("step_checks", [None, (TIGHT_ERRORS,)], ids=["policy checks", "the step's own checks"])
def test_each_step_compares_the_policys_model_metrics_and_a_worse_one_aborts(step_checks) -> None:
    spec, world = model_metric_spec(step_checks), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, None, until=lambda s: s.canary_step == 2)
    request = analysis_request(spec, status)
    assert request is not None and request.stage is AnalysisStage.CANARY
    assert set(request.queries) == {"error-ratio", "latency-p99", "majority-class-share"}
    assert (
        request.baseline_queries["majority-class-share"]
        == f'majority_share{{deployment="iris-classifier",version="{BLUE}"}}'
    )
    ratio = 0.004 if step_checks else 0.02  # passes the step's tighter threshold only when it applies
    values = {"error-ratio": ratio, "latency-p99": 0.1}
    skewed = AnalysisSample(AnalysisStage.CANARY, GREEN, {**values, "majority-class-share": 0.97}, "",
                            baseline={**values, "majority-class-share": 0.4})  # fmt: skip
    decision = reconcile(spec, status, world.observed(skewed), now + timedelta(seconds=1))
    assert decision.status.phase is Phase.ROLLING_BACK and world.weight == 10
    assert cluster_actions(decision)[0] == SetTrafficWeight(GREEN, 0)
    assert "majority-class-share=0.97" in decision.status.reason
    [error_ratio] = [c for c in decision.status.last_analysis.checks if c.name == "error-ratio"]
    assert error_ratio.threshold == (0.01 if step_checks else 0.05)  # the step's own check replaces the policy's


def test_a_step_with_its_own_checks_passes_when_the_policys_model_metric_matches_stable() -> None:
    spec, world = model_metric_spec((TIGHT_ERRORS,)), cluster()
    status, now, _ = run(spec, start_rollout(spec, at(0)), world, at(0), 5, None, until=lambda s: s.canary_step == 2)
    values = {"error-ratio": 0.004, "latency-p99": 0.1, "majority-class-share": 0.4}
    sample = AnalysisSample(AnalysisStage.CANARY, GREEN, values, "", baseline=values)
    decision = reconcile(spec, status, world.observed(sample), now + timedelta(seconds=1))
    assert decision.status.phase is Phase.CANARY and decision.status.canary_step == 3
    assert {c.name for c in decision.status.last_analysis.checks} == set(values)
