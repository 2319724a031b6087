"""Preview traffic during analysis, what an analysis with no data says, and promotion by hand."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from control.domain.rollout import (
    Action,
    AnalysisSample,
    AnalysisStage,
    EventKind,
    IntentSource,
    ManualPromotion,
    Observed,
    Phase,
    RecordEvent,
    RollbackIntent,
    RolloutSpec,
    RolloutStatus,
    ServiceRole,
    StartPreviewTraffic,
    StopPreviewTraffic,
    SwitchSelector,
    default_checks,
    reconcile,
    request_promotion,
    request_rollback,
    start_rollout,
)
from control.errors import Conflict, InvalidInput
from tests.support.rollout_harness import (
    BLUE,
    GREEN,
    POST_GOOD,
    POST_NO_DATA,
    PRE_GOOD,
    PRE_NO_DATA,
    Cluster,
    at,
    make_spec,
)

SAMPLE = "s3://artifacts/models/iris/runs/r2/sample.json"


@dataclass
class TrafficCluster(Cluster):
    """The harness cluster plus the preview-traffic Jobs that exist."""

    traffic: set[int] = field(default_factory=set)
    started: list[StartPreviewTraffic] = field(default_factory=list)

    def observed(self, analysis: AnalysisSample | None = None) -> Observed:
        seen = super().observed(analysis)
        return Observed(seen.deployments, seen.active_selector, seen.preview_selector, analysis, GREEN in self.traffic)

    def apply(self, actions: tuple[Action, ...] | list[Action]) -> None:
        super().apply(actions)
        for action in actions:
            if isinstance(action, StartPreviewTraffic):
                self.traffic.add(action.version)
                self.started.append(action)
            elif isinstance(action, StopPreviewTraffic):
                self.traffic.discard(action.version)


def run(spec: RolloutSpec, status: RolloutStatus, cluster: TrafficCluster, seconds: float, analysis=None):
    decision = reconcile(spec, status, cluster.observed(analysis), at(seconds))
    cluster.apply(decision.actions)
    cluster.settle()
    return decision


def traffic_actions(decision) -> list[Action]:
    return [a for a in decision.actions if isinstance(a, (StartPreviewTraffic, StopPreviewTraffic))]


def events(decision) -> list[RecordEvent]:
    return [a for a in decision.actions if isinstance(a, RecordEvent)]


def with_sample(**changes: object) -> RolloutSpec:
    return make_spec(sample_request_uri=SAMPLE, **changes)


# -- preview traffic --------------------------------------------------------------------------------


def test_traffic_starts_with_pre_promotion_analysis_runs_through_the_bake_and_stops_after_it() -> None:
    spec = with_sample(preview_traffic_rate=7.0, preview_traffic_seconds=900.0)
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    # (seconds, analysis, phase after, traffic actions)
    path = [
        (0, None, Phase.DEPLOYING_PREVIEW, []),
        (10, None, Phase.PRE_PROMOTION_ANALYSIS, [StartPreviewTraffic(GREEN, 7.0, 900.0, SAMPLE)]),
        (20, PRE_NO_DATA, Phase.PRE_PROMOTION_ANALYSIS, []),  # running: not started twice
        (40, PRE_GOOD, Phase.PROMOTING, []),
        (45, None, Phase.BAKING, []),
        (75, POST_GOOD, Phase.BAKING, []),
        (345, POST_GOOD, Phase.SCALING_DOWN_OLD, [StopPreviewTraffic(GREEN)]),
        (600, POST_GOOD, Phase.SCALING_DOWN_OLD, []),
        (645, POST_GOOD, Phase.SCALING_DOWN_OLD, []),
        (650, None, Phase.COMPLETED, []),
    ]
    for seconds, analysis, phase, wanted in path:
        decision = run(spec, status, cluster, seconds, analysis)
        status = decision.status
        assert (status.phase, traffic_actions(decision)) == (phase, wanted), seconds
    assert cluster.traffic == set() and len(cluster.started) == 1


def test_a_job_that_vanished_during_analysis_is_started_again() -> None:
    spec = with_sample()
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    for seconds in (0, 10):
        status = run(spec, status, cluster, seconds).status
    cluster.traffic.clear()  # e.g. deleted by hand, or its TTL ran out
    again = run(spec, status, cluster, 20, PRE_NO_DATA)
    assert traffic_actions(again) == [StartPreviewTraffic(GREEN, 5.0, 1800.0, SAMPLE)]


@pytest.mark.parametrize("paused", [False, True])
def test_a_rollback_during_analysis_stops_the_traffic(paused: bool) -> None:
    spec = with_sample(inconclusive_timeout_seconds=20.0 if paused else 60.0)
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    for seconds, analysis in ((0, None), (10, None), (40, PRE_NO_DATA)):
        status = run(spec, status, cluster, seconds, analysis).status
    assert status.phase is (Phase.PAUSED if paused else Phase.PRE_PROMOTION_ANALYSIS)
    assert cluster.traffic == {GREEN}  # a paused analysis keeps its traffic: data may come back
    status = request_rollback(status, RollbackIntent(spec.deployment, IntentSource.USER, "k", "no", at(50)))
    decision = run(spec, status, cluster, 50)
    assert decision.status.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK)
    assert traffic_actions(decision) == [StopPreviewTraffic(GREEN)] and cluster.traffic == set()


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"preview_traffic_rate": 0}, "preview traffic is off (preview_traffic_rate 0)"),
        ({"sample_request_uri": ""}, f"v{GREEN} has no registered sample request, so no preview traffic was sent"),
    ],
)
def test_without_a_sample_or_with_rate_0_no_traffic_and_the_analysis_says_why(changes: dict, why: str) -> None:
    spec = make_spec(**{"sample_request_uri": SAMPLE, "pre_promotion": default_checks(), **changes})
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    no_data = AnalysisSample(AnalysisStage.PRE_PROMOTION, GREEN, {"error-ratio": None, "latency-p99": None})
    for seconds, analysis in ((0, None), (10, None), (40, no_data), (70, no_data)):
        decision = run(spec, status, cluster, seconds, analysis)
        status = decision.status
        assert traffic_actions(decision) == []
    assert status.phase is Phase.PAUSED
    message = f"no requests reached the preview v{GREEN} in the last 1m; {why}"
    assert status.last_analysis is not None and status.last_analysis.error == message
    assert message in status.reason


def test_no_data_with_traffic_running_names_the_version_and_the_window() -> None:
    spec = with_sample(pre_promotion=default_checks(), post_promotion=default_checks())
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    no_data = AnalysisSample(AnalysisStage.PRE_PROMOTION, GREEN, {"error-ratio": None, "latency-p99": None})
    for seconds, analysis in ((0, None), (10, None), (40, no_data)):
        status = run(spec, status, cluster, seconds, analysis).status
    assert status.last_analysis.summary() == f"inconclusive: no requests reached the preview v{GREEN} in the last 1m"
    # Partial data is not "no requests": the check without data says so on its own.
    partial = AnalysisSample(AnalysisStage.PRE_PROMOTION, GREEN, {"error-ratio": 0.0, "latency-p99": None})
    status = run(spec, status, cluster, 50, partial).status
    assert status.last_analysis.error == "" and "latency-p99=no data" in status.last_analysis.summary()


def test_spec_keeps_preview_traffic_settings_and_refuses_bad_ones() -> None:
    spec = with_sample(preview_traffic_rate=2.5, preview_traffic_seconds=60.0)
    assert RolloutSpec.parse(spec.to_dict()) == spec
    old_record = {k: v for k, v in spec.to_dict().items() if "preview_traffic" not in k and k != "sample_request_uri"}
    assert RolloutSpec.parse(old_record).preview_traffic_rate == 5.0  # recorded before: the defaults
    for raw, name in (
        ({"preview_traffic_rate": -1}, "preview_traffic_rate"),
        ({"preview_traffic_rate": 5000}, "preview_traffic_rate"),
        ({"preview_traffic_rate": True}, "preview_traffic_rate"),
        ({"preview_traffic_seconds": 0}, "preview_traffic_seconds"),
        ({"sample_request_uri": "http://x/sample.json"}, "sample_request_uri"),
    ):
        with pytest.raises(InvalidInput) as error:
            RolloutSpec.parse({**spec.to_dict(), **raw})
        assert error.value.field == name


# -- promotion by hand --------------------------------------------------------------------------------


def promotion(key: str = "req-1", seconds: float = 100) -> ManualPromotion:
    return ManualPromotion("iris-classifier", key, "alice", "the model is fine; no traffic yet", at(seconds))


def paused_in_pre_promotion() -> tuple[RolloutSpec, RolloutStatus, TrafficCluster]:
    spec = with_sample(preview_traffic_rate=0)
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    for seconds, analysis in ((0, None), (10, None), (40, PRE_NO_DATA), (70, PRE_NO_DATA)):
        status = run(spec, status, cluster, seconds, analysis).status
    assert status.phase is Phase.PAUSED and status.paused_from is Phase.PRE_PROMOTION_ANALYSIS
    return spec, status, cluster


def test_a_paused_pre_promotion_analysis_promoted_by_hand_switches_in_the_next_step() -> None:
    spec, status, cluster = paused_in_pre_promotion()
    recorded = request_promotion(status, promotion())
    assert recorded.revision == status.revision + 1 and recorded.phase is Phase.PAUSED  # the step acts, not the call
    assert request_promotion(recorded, promotion()) is recorded  # the same request again: no-op
    decision = run(spec, recorded, cluster, 101, PRE_NO_DATA)
    assert decision.status.phase is Phase.PROMOTING and decision.status.promotion is None
    assert SwitchSelector(ServiceRole.ACTIVE, GREEN) in decision.actions and cluster.active == GREEN
    (event,) = events(decision)
    assert event.kind is EventKind.PROMOTED_BY_HAND
    assert event.message == (
        f"v{GREEN} promoted by hand past pre-promotion analysis by alice: the model is fine; no traffic yet"
    )


def test_a_running_pre_promotion_analysis_can_be_promoted_too() -> None:
    spec = with_sample()
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    for seconds in (0, 10):
        status = run(spec, status, cluster, seconds).status
    decision = run(spec, request_promotion(status, promotion()), cluster, 20, PRE_NO_DATA)
    assert decision.status.phase is Phase.PROMOTING and cluster.active == GREEN


@pytest.mark.parametrize("paused", [False, True])
def test_promoting_past_the_bake_goes_on_to_scale_down(paused: bool) -> None:
    spec = with_sample(inconclusive_timeout_seconds=20.0 if paused else 60.0)
    status, cluster = start_rollout(spec, at(0)), TrafficCluster()
    for seconds, analysis in ((0, None), (10, None), (40, PRE_GOOD), (45, None), (75, POST_NO_DATA)):
        status = run(spec, status, cluster, seconds, analysis).status
    if paused:
        status = run(spec, status, cluster, 100, POST_NO_DATA).status
        assert status.phase is Phase.PAUSED and status.paused_from is Phase.BAKING
    else:
        assert status.phase is Phase.BAKING
    decision = run(spec, request_promotion(status, promotion()), cluster, 110, POST_NO_DATA)
    assert decision.status.phase is Phase.SCALING_DOWN_OLD
    assert [e.kind for e in events(decision)] == [EventKind.PROMOTED_BY_HAND]
    assert "past the bake by alice" in events(decision)[0].message
    assert traffic_actions(decision) == [StopPreviewTraffic(GREEN)]
    assert cluster.active == GREEN and cluster.deployments[BLUE].desired > 0  # blue stays warm until the delay


@pytest.mark.parametrize(
    "phase", [Phase.PENDING, Phase.DEPLOYING_PREVIEW, Phase.PROMOTING, Phase.COMPLETED, Phase.ROLLED_BACK]
)
def test_promotion_outside_analysis_is_a_conflict_that_says_when_it_is_allowed(phase: Phase) -> None:
    status = start_rollout(with_sample(), at(0))
    with pytest.raises(Conflict) as error:
        request_promotion(replace(status, phase=phase), promotion())
    assert f"is {phase.value}" in error.value.message and "only while PAUSED or in analysis" in error.value.message


def test_a_rollback_wins_over_a_promotion() -> None:
    spec, status, cluster = paused_in_pre_promotion()
    rollback = RollbackIntent(spec.deployment, IntentSource.ALERT, "fp@t", "errors", at(100))
    with pytest.raises(Conflict, match="rollback is already requested"):
        request_promotion(request_rollback(status, rollback), promotion())
    both = request_rollback(request_promotion(status, promotion()), rollback)
    decision = run(spec, both, cluster, 101)
    assert decision.status.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK) and decision.status.promotion is None
    assert cluster.active == BLUE
    with pytest.raises(Conflict, match="a promotion is already requested by alice"):
        request_promotion(request_promotion(status, promotion()), promotion("req-2"))


def test_a_recorded_promotion_round_trips() -> None:
    _, status, _ = paused_in_pre_promotion()
    recorded = request_promotion(status, promotion())
    assert RolloutStatus.from_dict(recorded.to_dict()) == recorded
