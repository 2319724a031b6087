"""The blue-green reconcile step, phase by phase, with time passed in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from control.domain.rollout import (
    AnalysisStage,
    EnsureDeployment,
    EventKind,
    IntentSource,
    MarkLastKnownGood,
    Outcome,
    Phase,
    RecordEvent,
    RollbackIntent,
    RolloutSpec,
    RolloutStatus,
    ScaleDeployment,
    ScheduleRequeue,
    ServiceRole,
    SwitchSelector,
    VersionObservation,
    analysis_request,
    reconcile,
    request_rollback,
    start_rollout,
)
from control.errors import Conflict, InvalidInput
from tests.support.rollout_harness import (
    BLUE,
    CHECKS,
    GREEN,
    POST_BAD,
    POST_GOOD,
    POST_NO_DATA,
    PRE_BAD,
    PRE_GOOD,
    PRE_NO_DATA,
    REPLICAS,
    Cluster,
    at,
    cluster_actions,
    make_spec,
    sample,
    step,
)


def events(decision) -> list[EventKind]:
    return [a.kind for a in decision.actions if isinstance(a, RecordEvent)]


def user_rollback(status: RolloutStatus, seconds: float, key: str = "req-1") -> RolloutStatus:
    intent = RollbackIntent(status.deployment, IntentSource.USER, key, "bad predictions", at(seconds))
    return request_rollback(status, intent)


# ----------------------------------------------------------------------------- the happy path

# (seconds, analysis, phase after, cluster actions, events, requeue)
HAPPY_PATH = [
    (0, None, Phase.DEPLOYING_PREVIEW,
     [EnsureDeployment(GREEN, REPLICAS), SwitchSelector(ServiceRole.PREVIEW, GREEN)], [EventKind.STARTED], 5),
    (10, None, Phase.PRE_PROMOTION_ANALYSIS, [], [EventKind.PREVIEW_READY], 30),
    (40, PRE_GOOD, Phase.PROMOTING, [SwitchSelector(ServiceRole.ACTIVE, GREEN)], [EventKind.ANALYSIS_PASSED], 5),
    (45, None, Phase.BAKING, [], [EventKind.PROMOTED], 30),
    (75, POST_GOOD, Phase.BAKING, [], [], 30),
    (330, POST_GOOD, Phase.BAKING, [], [], 15),  # requeue lands on the end of the bake
    (345, POST_GOOD, Phase.SCALING_DOWN_OLD, [], [EventKind.BAKED], 30),
    (600, POST_GOOD, Phase.SCALING_DOWN_OLD, [], [], 30),
    (645, POST_GOOD, Phase.SCALING_DOWN_OLD, [ScaleDeployment(BLUE, 0)], [], 5),
    (650, None, Phase.COMPLETED, [], [EventKind.COMPLETED], None),
]  # fmt: skip


def test_happy_path_from_pending_to_completed_step_by_step() -> None:
    spec = make_spec()
    status = start_rollout(spec, at(0))
    cluster = Cluster()
    revisions = [status.revision]
    for seconds, analysis, phase, actions, kinds, requeue in HAPPY_PATH:
        decision = step(spec, status, cluster, at(seconds), analysis)
        assert (decision.status.phase, cluster_actions(decision), events(decision)) == (phase, actions, kinds), seconds
        assert decision.requeue_after == requeue, seconds
        status = decision.status
        revisions.append(status.revision)
    assert revisions == sorted(revisions)
    assert status.active_version == status.stable_version == GREEN
    assert status.promoted_at == at(45)
    assert MarkLastKnownGood(GREEN) in decision.actions
    assert cluster.active == GREEN and cluster.deployments[BLUE].desired == 0
    assert all(ready >= REPLICAS for service, _, ready in cluster.switches if service is ServiceRole.ACTIVE)


def test_blue_stays_warm_until_the_scale_down_delay_even_after_the_bake() -> None:
    spec, status, cluster = drive_to(Phase.SCALING_DOWN_OLD)
    decision = step(spec, status, cluster, at(500), POST_GOOD)
    assert decision.status.phase is Phase.SCALING_DOWN_OLD
    assert cluster.deployments[BLUE].desired == REPLICAS


def test_a_first_rollout_has_nothing_to_scale_down() -> None:
    spec = make_spec(previous_version=None, bake_seconds=0, pre_promotion=(), post_promotion=())
    status, cluster = start_rollout(spec, at(0)), Cluster(deployments={}, active=None)
    for seconds in range(0, 60, 5):
        status = step(spec, status, cluster, at(seconds)).status
    assert status.phase is Phase.COMPLETED and cluster.active == GREEN and status.stable_version == GREEN


# ----------------------------------------------------------------- driving to any phase


def drive_to(target: Phase, spec: RolloutSpec | None = None) -> tuple[RolloutSpec, RolloutStatus, Cluster]:
    """Follow the happy path (or a data outage, for PAUSED) until the rollout is in `target`."""
    spec = spec or make_spec()
    status, cluster = start_rollout(spec, at(0)), Cluster()
    if target is Phase.PENDING:
        return spec, status, cluster
    for seconds, analysis, *_ in HAPPY_PATH:
        if target is Phase.PAUSED and status.phase is Phase.PRE_PROMOTION_ANALYSIS:
            for later in (40, 70, 100):
                status = step(spec, status, cluster, at(later), PRE_NO_DATA).status
            assert status.phase is Phase.PAUSED
            return spec, status, cluster
        status = step(spec, status, cluster, at(seconds), analysis).status
        if status.phase is target:
            return spec, status, cluster
    raise AssertionError(f"never reached {target}")


def settle_rollback(spec, status, cluster, start: float) -> tuple[RolloutStatus, list]:
    decisions = []
    for seconds in range(int(start), int(start) + 120, 5):
        decision = step(spec, status, cluster, at(seconds))
        decisions.append(decision)
        status = decision.status
        if not status.phase.in_progress:
            break
    return status, decisions


ABORTABLE = [
    Phase.PENDING,
    Phase.DEPLOYING_PREVIEW,
    Phase.PRE_PROMOTION_ANALYSIS,
    Phase.PROMOTING,
    Phase.BAKING,
    Phase.SCALING_DOWN_OLD,
    Phase.PAUSED,
    Phase.COMPLETED,
]


@pytest.mark.parametrize("phase", ABORTABLE, ids=lambda p: p.value)
def test_a_rollback_intent_in_any_phase_ends_with_traffic_on_blue(phase: Phase) -> None:
    spec, status, cluster = drive_to(phase)
    status = user_rollback(status, 700)
    final, decisions = settle_rollback(spec, status, cluster, 700)
    assert decisions[0].status.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK)
    assert EventKind.ROLLBACK_STARTED in events(decisions[0])
    assert final.phase is Phase.ROLLED_BACK
    assert final.active_version == final.stable_version == BLUE
    assert "user req-1: bad predictions" in final.reason
    assert cluster.active == BLUE
    assert cluster.deployments.get(GREEN, VersionObservation(0, 0)).desired == 0
    assert all(ready >= REPLICAS for service, _, ready in cluster.switches if service is ServiceRole.ACTIVE)
    marks = [a for d in decisions for a in d.actions if isinstance(a, MarkLastKnownGood)]
    # Only a rollback after completion moves the last-known-good (back to blue).
    assert marks == ([MarkLastKnownGood(BLUE)] if phase is Phase.COMPLETED else [])
    assert final.intent is not None and final.intent.source is IntentSource.USER


@pytest.mark.parametrize("phase", [Phase.ROLLED_BACK, Phase.FAILED, Phase.ROLLING_BACK], ids=lambda p: p.value)
def test_a_rollback_request_when_there_is_nothing_to_roll_back_is_a_conflict(phase: Phase) -> None:
    spec = make_spec()
    status = replace(start_rollout(spec, at(0)), phase=phase)
    with pytest.raises(Conflict):
        user_rollback(status, 10)


def test_recording_the_same_intent_twice_is_a_no_op_and_a_different_one_is_a_conflict() -> None:
    _, status, _ = drive_to(Phase.BAKING)
    once = user_rollback(status, 100)
    assert user_rollback(once, 101) == once
    with pytest.raises(Conflict, match="already requested"):
        user_rollback(once, 102, key="req-2")


def test_rollback_after_completed_recreates_blue_switches_at_its_first_ready_pod_keeps_green_until_all_are() -> None:
    spec, status, cluster = drive_to(Phase.COMPLETED)
    del cluster.deployments[BLUE]  # scaled away and garbage-collected
    status = user_rollback(status, 1000)

    first = step(spec, status, cluster, at(1000), settle=False)
    assert first.status.phase is Phase.ROLLING_BACK
    assert cluster_actions(first) == [EnsureDeployment(BLUE, REPLICAS)]  # no switch yet: blue is not ready

    cluster.deployments[BLUE] = VersionObservation(REPLICAS, 1)  # half the pods are up: traffic leaves green
    switch = step(spec, first.status, cluster, at(1005), settle=False)
    assert cluster_actions(switch) == [SwitchSelector(ServiceRole.ACTIVE, BLUE)]

    waiting = step(spec, switch.status, cluster, at(1010), settle=False)
    assert cluster_actions(waiting) == [] and waiting.status.phase is Phase.ROLLING_BACK  # green stays meanwhile

    cluster.settle()
    done = step(spec, waiting.status, cluster, at(1015))
    assert cluster_actions(done) == [ScaleDeployment(GREEN, 0)]
    final = step(spec, done.status, cluster, at(1020))
    assert final.status.phase is Phase.ROLLED_BACK
    assert MarkLastKnownGood(BLUE) in final.actions
    assert cluster.switches[-1] == (ServiceRole.ACTIVE, BLUE, 1)


# --------------------------------------------------------------------- blue's rollback window


def test_blue_keeps_one_warm_replica_through_its_rollback_window_then_goes_to_zero() -> None:
    spec = make_spec(rollback_window_seconds=1800.0)
    spec, status, cluster = drive_to(Phase.SCALING_DOWN_OLD, spec)
    down = step(spec, status, cluster, at(645), POST_GOOD)  # the scale-down delay is over
    assert cluster_actions(down) == [ScaleDeployment(BLUE, 1)]
    completed = step(spec, down.status, cluster, at(650))
    assert completed.status.phase is Phase.COMPLETED and events(completed) == [EventKind.COMPLETED]
    assert "v1 kept warm (1 replica) for a fast rollback until 2025-03-01T12:30:45" in completed.actions[-2].message
    assert completed.requeue_after == pytest.approx(1845 - 650)  # the window ends 1800 s after the switch at 45 s
    assert cluster.deployments[BLUE] == VersionObservation(1, 1)

    still = step(spec, completed.status, cluster, at(1000))
    assert cluster_actions(still) == [] and not still.changed
    over = step(spec, completed.status, cluster, at(1845))
    assert cluster_actions(over) == [ScaleDeployment(BLUE, 0)] and events(over) == [EventKind.ROLLBACK_WINDOW_ENDED]
    at_rest = step(spec, over.status, cluster, at(1850))
    assert at_rest.requeue_after is None and cluster.deployments[BLUE].desired == 0


def test_a_rollback_inside_the_window_is_a_switch_to_the_warm_replica() -> None:
    spec = make_spec(rollback_window_seconds=1800.0)
    spec, status, cluster = drive_to(Phase.SCALING_DOWN_OLD, spec)
    status = step(spec, status, cluster, at(645), POST_GOOD).status
    status = step(spec, status, cluster, at(650)).status
    assert status.phase is Phase.COMPLETED

    rollback = step(spec, user_rollback(status, 700), cluster, at(700), settle=False)
    assert cluster_actions(rollback) == [EnsureDeployment(BLUE, REPLICAS), SwitchSelector(ServiceRole.ACTIVE, BLUE)]
    assert cluster.active == BLUE  # in the first step: no pod had to start
    cluster.settle()
    done = step(spec, rollback.status, cluster, at(705))
    assert cluster_actions(done) == [ScaleDeployment(GREEN, 0)]
    assert step(spec, done.status, cluster, at(710)).status.phase is Phase.ROLLED_BACK


def test_a_rollback_after_the_window_re_creates_blue() -> None:
    spec = make_spec(rollback_window_seconds=700.0)
    spec, status, cluster = drive_to(Phase.SCALING_DOWN_OLD, spec)
    status = step(spec, status, cluster, at(645), POST_GOOD).status
    status = step(spec, status, cluster, at(650)).status
    status = step(spec, status, cluster, at(745)).status  # window over: blue to 0
    rollback = step(spec, user_rollback(status, 900), cluster, at(900), settle=False)
    assert cluster_actions(rollback) == [EnsureDeployment(BLUE, REPLICAS)]  # cold: nothing to switch to yet


def test_a_rollback_window_longer_than_the_loop_can_wait_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_spec(rollback_window_seconds=13 * 3600)
    assert caught.value.field == "rollback_window_seconds"


def test_a_window_shorter_than_the_scale_down_delay_scales_blue_straight_to_zero() -> None:
    spec = make_spec(rollback_window_seconds=300.0)
    spec, status, cluster = drive_to(Phase.SCALING_DOWN_OLD, spec)
    down = step(spec, status, cluster, at(645), POST_GOOD)
    assert cluster_actions(down) == [ScaleDeployment(BLUE, 0)]
    final = step(spec, down.status, cluster, at(650))
    assert final.status.phase is Phase.COMPLETED and final.requeue_after is None


# ------------------------------------------------------------------------ failures that abort


def test_green_that_never_becomes_ready_aborts_and_blue_keeps_serving() -> None:
    spec, status, cluster = make_spec(), None, Cluster(broken={GREEN})
    status = start_rollout(spec, at(0))
    for seconds in range(0, 120, 5):
        status = step(spec, status, cluster, at(seconds)).status
        assert status.phase is Phase.DEPLOYING_PREVIEW
    timed_out = step(spec, status, cluster, at(120))
    assert timed_out.status.phase is Phase.ROLLING_BACK
    assert cluster_actions(timed_out) == [ScaleDeployment(GREEN, 0)]
    assert "v2 not ready after 120s (v2 has 0/2 replicas ready); v1 keeps serving" in timed_out.status.reason
    final = step(spec, timed_out.status, cluster, at(125)).status
    assert final.phase is Phase.ROLLED_BACK and final.intent.key == "ready-timeout"
    assert cluster.active == BLUE and not [s for s in cluster.switches if s[0] is ServiceRole.ACTIVE]


def test_failed_pre_promotion_analysis_aborts_with_blue_still_active() -> None:
    spec, status, cluster = drive_to(Phase.PRE_PROMOTION_ANALYSIS)
    decision = step(spec, status, cluster, at(40), PRE_BAD)
    assert decision.status.phase is Phase.ROLLING_BACK
    assert cluster_actions(decision) == [ScaleDeployment(GREEN, 0)]
    assert decision.status.last_analysis.outcome is Outcome.FAILED
    assert "error-ratio=0.4 (needs < 0.05)" in decision.status.reason
    assert step(spec, decision.status, cluster, at(45)).status.phase is Phase.ROLLED_BACK
    assert cluster.active == BLUE


def test_failed_post_promotion_analysis_switches_back_to_warm_blue_in_the_same_step() -> None:
    spec, status, cluster = drive_to(Phase.BAKING)
    decision = step(spec, status, cluster, at(100), POST_BAD)
    assert decision.status.phase is Phase.ROLLING_BACK
    assert cluster_actions(decision) == [SwitchSelector(ServiceRole.ACTIVE, BLUE)]
    assert "latency-p99=2.5 (needs < 0.5)" in decision.status.reason
    final = step(spec, step(spec, decision.status, cluster, at(105)).status, cluster, at(110)).status
    assert final.phase is Phase.ROLLED_BACK and cluster.active == BLUE
    assert final.stable_version == BLUE


def test_a_failing_check_during_the_warm_window_still_rolls_back() -> None:
    spec, status, cluster = drive_to(Phase.SCALING_DOWN_OLD)
    decision = step(spec, status, cluster, at(400), POST_BAD)
    assert cluster_actions(decision) == [SwitchSelector(ServiceRole.ACTIVE, BLUE)]


def test_first_rollout_abort_before_promotion_fails_without_a_target() -> None:
    spec = make_spec(previous_version=None)
    status, cluster = start_rollout(spec, at(0)), Cluster(deployments={}, active=None)
    status = step(spec, status, cluster, at(0)).status
    status = step(spec, status, cluster, at(5)).status
    decision = step(spec, status, cluster, at(40), PRE_BAD)
    assert cluster_actions(decision) == [ScaleDeployment(GREEN, 0)]
    final = step(spec, decision.status, cluster, at(45)).status
    assert final.phase is Phase.FAILED and "no previous version" in final.reason
    assert cluster.active is None


# -------------------------------------------------------------- inconclusive → pause → resume


def test_inconclusive_pre_promotion_pauses_with_a_reason_and_resumes_when_data_returns() -> None:
    spec, status, cluster = drive_to(Phase.PRE_PROMOTION_ANALYSIS)
    unreachable = sample(AnalysisStage.PRE_PROMOTION, None, None, error="Prometheus unreachable: connection refused")
    assert status.inconclusive_since == at(10)  # no data since analysis began
    first = step(spec, status, cluster, at(40), unreachable)
    assert first.status.phase is Phase.PRE_PROMOTION_ANALYSIS and first.status.inconclusive_since == at(10)
    assert cluster_actions(first) == [] and first.requeue_after == 30
    paused = step(spec, first.status, cluster, at(70), unreachable)
    assert paused.status.phase is Phase.PAUSED and paused.status.paused_from is Phase.PRE_PROMOTION_ANALYSIS
    assert "Prometheus unreachable" in paused.status.reason and "not promoting blindly" in paused.status.reason
    assert events(paused) == [EventKind.PAUSED] and cluster_actions(paused) == []

    for seconds in (130, 600, 3600):  # paused is paused: no promotion however long it waits
        paused = step(spec, paused.status, cluster, at(seconds), PRE_NO_DATA)
        assert paused.status.phase is Phase.PAUSED and cluster.active == BLUE

    resumed = step(spec, paused.status, cluster, at(3630), PRE_GOOD)
    assert events(resumed) == [EventKind.RESUMED, EventKind.ANALYSIS_PASSED]
    assert cluster_actions(resumed) == [SwitchSelector(ServiceRole.ACTIVE, GREEN)]
    assert resumed.status.reason == "" and resumed.status.paused_from is None


def test_a_paused_rollout_whose_data_comes_back_bad_aborts() -> None:
    spec, status, cluster = drive_to(Phase.PAUSED)
    decision = step(spec, status, cluster, at(200), PRE_BAD)
    assert decision.status.phase is Phase.ROLLING_BACK and cluster.active == BLUE


def test_inconclusive_bake_pauses_with_blue_warm_and_resumes_to_complete() -> None:
    spec, status, cluster = drive_to(Phase.BAKING)
    for seconds in (60, 90):
        status = step(spec, status, cluster, at(seconds), POST_NO_DATA).status
    assert status.phase is Phase.BAKING
    status = step(spec, status, cluster, at(120), POST_NO_DATA).status
    assert status.phase is Phase.PAUSED and status.paused_from is Phase.BAKING
    assert analysis_request(spec, status).stage is AnalysisStage.POST_PROMOTION
    status = step(spec, status, cluster, at(400), POST_NO_DATA).status
    assert status.phase is Phase.PAUSED  # the bake time is over, but never complete blindly
    status = step(spec, status, cluster, at(430), POST_GOOD).status
    assert status.phase is Phase.SCALING_DOWN_OLD
    assert cluster.deployments[BLUE].desired == REPLICAS


def test_a_sample_for_another_version_or_stage_does_not_count() -> None:
    spec, status, cluster = drive_to(Phase.PRE_PROMOTION_ANALYSIS)
    for wrong in (sample(AnalysisStage.PRE_PROMOTION, version=BLUE), POST_GOOD):
        decision = step(spec, status, cluster, at(40), wrong)
        assert decision.status.phase is Phase.PRE_PROMOTION_ANALYSIS
        assert decision.status.last_analysis.outcome is Outcome.INCONCLUSIVE


# ------------------------------------------------------------ idempotency, crash and resume


@pytest.mark.parametrize("phase", ABORTABLE, ids=lambda p: p.value)
def test_the_same_recorded_status_and_inputs_give_the_same_decision(phase: Phase) -> None:
    spec, status, cluster = drive_to(phase)
    observed = cluster.observed(POST_GOOD)
    assert reconcile(spec, status, observed, at(700)) == reconcile(spec, status, observed, at(700))


@pytest.mark.parametrize("phase", ABORTABLE, ids=lambda p: p.value)
def test_repeating_a_step_with_the_same_observations_changes_nothing(phase: Phase) -> None:
    spec, status, cluster = drive_to(phase)
    observed = cluster.observed(POST_GOOD)
    first = reconcile(spec, status, observed, at(700))
    again = reconcile(spec, first.status, observed, at(700))
    assert not again.changed and again.status == first.status and events(again) == []
    assert cluster_actions(again) == cluster_actions(first)  # the same idempotent requests, nothing new


def good_data_for(spec: RolloutSpec, status: RolloutStatus):
    request = analysis_request(spec, status)
    return None if request is None else sample(request.stage)


@pytest.mark.parametrize("phase", ABORTABLE, ids=lambda p: p.value)
def test_from_any_phase_good_data_converges_to_completed_and_then_nothing_changes(phase: Phase) -> None:
    spec, status, cluster = drive_to(phase)
    for seconds in range(700, 2000, 5):
        decision = step(spec, status, cluster, at(seconds), good_data_for(spec, status))
        status = decision.status
        if not decision.changed and not cluster_actions(decision):
            break
    else:
        raise AssertionError("never settled")
    assert status.phase is Phase.COMPLETED and cluster.active == GREEN
    assert cluster.deployments[BLUE].desired == 0


def test_crash_after_half_the_actions_converges_without_repeating_them() -> None:
    spec = make_spec()
    status, cluster = start_rollout(spec, at(0)), Cluster()
    first = reconcile(spec, status, cluster.observed(), at(0))
    assert cluster_actions(first) == [EnsureDeployment(GREEN, REPLICAS), SwitchSelector(ServiceRole.PREVIEW, GREEN)]
    cluster.apply(cluster_actions(first)[:1])  # the executor died after the first action; status never written
    resumed = reconcile(spec, status, cluster.observed(), at(3))
    assert cluster_actions(resumed) == [SwitchSelector(ServiceRole.PREVIEW, GREEN)]
    assert resumed.status.phase is first.status.phase


def test_crash_between_the_switch_and_the_status_write_resumes_without_switching_again() -> None:
    spec, status, cluster = drive_to(Phase.PRE_PROMOTION_ANALYSIS)
    promoting = step(spec, status, cluster, at(40), PRE_GOOD)
    assert cluster.active == GREEN  # the switch was applied, but pretend the status write was lost
    resumed = reconcile(spec, status, cluster.observed(PRE_GOOD), at(45))
    assert cluster_actions(resumed) == []  # the selector is already right
    assert resumed.status.phase is Phase.BAKING
    assert promoting.status.phase is Phase.PROMOTING


def test_a_rollback_whose_switch_was_applied_but_not_recorded_does_not_switch_again() -> None:
    spec, status, cluster = drive_to(Phase.BAKING)
    status = user_rollback(status, 100)
    decision = reconcile(spec, status, cluster.observed(), at(100))
    cluster.apply([a for a in decision.actions if isinstance(a, SwitchSelector)])
    resumed = reconcile(spec, status, cluster.observed(), at(105))  # from the old recorded status
    assert [a for a in resumed.actions if isinstance(a, SwitchSelector)] == []
    assert cluster_actions(resumed) == [ScaleDeployment(GREEN, 0)]


def test_requeue_is_scheduled_while_in_progress_and_not_at_rest() -> None:
    spec, status, cluster = drive_to(Phase.COMPLETED)
    decision = reconcile(spec, status, cluster.observed(), at(700))
    assert not [a for a in decision.actions if isinstance(a, ScheduleRequeue)] and decision.requeue_after is None


# ------------------------------------------------------------------------ analysis requests


def test_analysis_request_renders_queries_for_green_in_analysis_phases_only() -> None:
    spec, status, _ = drive_to(Phase.PRE_PROMOTION_ANALYSIS)
    request = analysis_request(spec, status)
    assert request.stage is AnalysisStage.PRE_PROMOTION and request.version == GREEN
    assert request.queries["error-ratio"] == 'err_ratio{deployment="iris-classifier",version="2"}'
    assert analysis_request(spec, start_rollout(spec, at(0))) is None
    assert analysis_request(make_spec(pre_promotion=()), status) is None


@pytest.mark.parametrize("phase", [Phase.PRE_PROMOTION_ANALYSIS, Phase.BAKING, Phase.SCALING_DOWN_OLD, Phase.PAUSED])
def test_a_requested_rollback_measures_nothing_and_the_step_rolls_back_without_it(phase: Phase) -> None:
    spec, status, cluster = drive_to(phase)
    assert analysis_request(spec, status) is not None or phase is Phase.PAUSED  # it measures until then
    status = user_rollback(status, 700)
    assert analysis_request(spec, status) is None
    final, decisions = settle_rollback(spec, status, cluster, 700)
    assert EventKind.ROLLBACK_STARTED in events(decisions[0])
    assert final.phase is Phase.ROLLED_BACK and cluster.active == BLUE


def test_default_checks_render_to_promql_with_the_contract_metric_names() -> None:
    spec = RolloutSpec("iris-classifier", "iris", 3, 2)
    status = replace(start_rollout(spec, at(0)), phase=Phase.BAKING)
    queries = analysis_request(spec, status).queries
    assert set(queries) == {"error-ratio", "latency-p99"}
    selector = 'deployment="iris-classifier",model="iris",version="3"'
    assert f'mlcp_inference_requests_total{{{selector},code=~"5.."}}' in queries["error-ratio"]
    assert "mlcp_inference_request_duration_seconds_bucket" in queries["latency-p99"]


def test_nan_and_infinity_are_no_data_not_a_pass() -> None:
    spec, status, cluster = drive_to(Phase.PRE_PROMOTION_ANALYSIS)
    decision = step(spec, status, cluster, at(40), sample(AnalysisStage.PRE_PROMOTION, float("nan"), float("inf")))
    assert decision.status.last_analysis.outcome is Outcome.INCONCLUSIVE and cluster.active == BLUE


# ---------------------------------------------------------------------- values and validation


def test_status_round_trips_through_its_recorded_form() -> None:
    for phase in ABORTABLE:
        _, status, _ = drive_to(phase)
        status = user_rollback(status, 700) if phase.accepts_rollback else status
        assert RolloutStatus.from_dict(status.to_dict()) == status


def test_a_malformed_recorded_status_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as error:
        RolloutStatus.from_dict({"deployment": "x", "phase": "SIDEWAYS"})
    assert error.value.field == "status"


def test_spec_parses_from_json_and_back() -> None:
    spec = make_spec()
    assert RolloutSpec.parse(spec.to_dict()) == spec
    assert RolloutSpec.parse({"deployment": "d", "model": "m", "version": 4}).pre_promotion  # default checks


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"model": "m", "version": 2}, "deployment"),
        ({"deployment": "d", "model": "m", "version": 0}, "version"),
        ({"deployment": "d", "model": "m", "version": True}, "version"),
        ({"deployment": "d", "model": "m", "version": 2, "previous_version": 2}, "version"),
        ({"deployment": "D!", "model": "m", "version": 2}, "deployment"),
        ({"deployment": "d", "model": "m", "version": 2, "replicas": 0}, "replicas"),
        ({"deployment": "d", "model": "m", "version": 2, "bake_seconds": -1}, "bake_seconds"),
        ({"deployment": "d", "model": "m", "version": 2, "poll_interval_seconds": 0}, "poll_interval_seconds"),
        ({"deployment": "d", "model": "m", "version": 2, "colour": "green"}, "colour"),
        ({"deployment": "d", "model": "m", "version": 2, "pre_promotion": {}}, "pre_promotion"),
        ({"deployment": "d", "model": "m", "version": 2,
          "pre_promotion": [{"name": "e", "query": "up", "comparison": "~", "threshold": 1}]},
         "pre_promotion[0].comparison"),
        ({"deployment": "d", "model": "m", "version": 2,
          "post_promotion": [{"name": "e", "query": "", "comparison": "<", "threshold": 1}]},
         "post_promotion[0].query"),
        ({"deployment": "d", "model": "m", "version": 2,
          "post_promotion": [{"name": "e", "query": "up", "comparison": "<", "threshold": "x"}]},
         "post_promotion[0].threshold"),
        ({"deployment": "d", "model": "m", "version": 2,
          "post_promotion": [c.to_dict() for c in CHECKS + CHECKS[:1]]}, "post_promotion"),
    ],
)  # fmt: skip
def test_bad_specs_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        RolloutSpec.parse(raw)
    assert error.value.field == field


def test_a_spec_that_does_not_match_the_recorded_status_is_refused() -> None:
    spec, status, cluster = drive_to(Phase.BAKING)
    with pytest.raises(InvalidInput, match="does not match"):
        reconcile(make_spec(version=3), status, cluster.observed(), at(100))


def test_a_lost_write_after_an_abort_switch_never_scales_away_the_version_serving_traffic() -> None:
    spec, status, cluster = drive_to(Phase.BAKING)
    aborted = reconcile(spec, status, cluster.observed(POST_BAD), at(100))
    cluster.apply(aborted.actions)  # traffic back on blue, then the executor died: BAKING is still recorded
    assert cluster.active == BLUE
    for seconds in (400, 700):  # good data again, the bake and the scale-down delay are over
        resumed = reconcile(spec, status, cluster.observed(POST_GOOD), at(seconds))
        assert ScaleDeployment(BLUE, 0) not in resumed.actions
        assert resumed.status.phase is Phase.ROLLING_BACK
        assert "active Service selects v1, not the promoted v2" in resumed.status.reason
    status = step(spec, resumed.status, cluster, at(700)).status
    assert step(spec, status, cluster, at(705)).status.phase is Phase.ROLLED_BACK and cluster.active == BLUE
