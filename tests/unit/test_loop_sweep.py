"""The loop sweeper: which recorded work has no reconcile loop (pure), and the sweep over in-memory
ports: an alert's intent whose loop start died with its process is started once, under its own
name, with the audit entry the process did not write; nothing else is touched."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from control.domain.alert_payload import parse_webhook
from control.domain.deployments import DeploymentRecord
from control.domain.loop_sweep import LoopState, SweepAction, decide_sweep, pending_work
from control.domain.rollout import IntentSource, Phase, RollbackIntent, RolloutSpec, start_rollout
from control.usecases import loop_sweeper, rollouts
from tests.fakes import NOW, InMemoryPipelines, in_memory_platform

EVENTS = Path(__file__).resolve().parents[1] / "events"

SPEC = RolloutSpec("iris-classifier", "iris", 2, 1, replicas=1)


def completed(**changes: Any) -> DeploymentRecord:
    status = replace(
        start_rollout(SPEC, NOW - timedelta(minutes=5)),
        phase=Phase.COMPLETED,
        active_version=2,
        stable_version=2,
        revision=7,
        **changes,
    )
    return DeploymentRecord(SPEC, status, loop="iris-classifier-r7")


INTENT = RollbackIntent("iris-classifier", IntentSource.ALERT, "fp1@t", "5xx above 5%", NOW)


def with_intent() -> DeploymentRecord:
    record = completed()
    return replace(record, status=replace(record.status, intent=INTENT, revision=8), loop="iris-classifier-r8")


def test_an_intent_whose_loop_never_started_is_started_under_the_loop_the_record_names() -> None:
    decision = decide_sweep(with_intent(), LoopState.MISSING)
    assert decision is not None and decision.action is SweepAction.START
    assert decision.loop == "iris-classifier-r8" and "alert fp1@t" in decision.reason


def test_a_running_loop_or_a_record_at_rest_needs_nothing() -> None:
    assert decide_sweep(with_intent(), LoopState.RUNNING) is None
    for state in LoopState:
        assert decide_sweep(completed(), state) is None  # COMPLETED, no intent: at rest
        rolled_back = replace(with_intent().status, phase=Phase.ROLLED_BACK)  # the intent was acted on
        assert decide_sweep(replace(with_intent(), status=rolled_back), state) is None


def test_a_rollout_in_progress_without_its_loop_is_started_too() -> None:
    record = completed()
    baking = replace(record, status=replace(record.status, phase=Phase.BAKING))
    decision = decide_sweep(baking, LoopState.MISSING)
    assert decision is not None and decision.action is SweepAction.START and "BAKING" in decision.reason


def test_a_loop_that_ended_with_the_work_pending_is_reported_not_restarted() -> None:
    decision = decide_sweep(with_intent(), LoopState.ENDED)
    assert decision is not None and decision.action is SweepAction.STUCK


def test_a_record_stepped_by_hand_has_no_loop_to_sweep() -> None:
    assert pending_work(replace(with_intent(), loop="")) == ""


@pytest.mark.parametrize(
    ("status", "state"),
    [(None, LoopState.MISSING), ("RUNNING", LoopState.RUNNING), ("PENDING_REDRIVE", LoopState.RUNNING)]
    + [(s, LoopState.ENDED) for s in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")],
)
def test_loop_state_from_describe_execution(status: str | None, state: LoopState) -> None:
    assert LoopState.of(status) is state


# -- the sweep over in-memory ports ----------------------------------------------------------------


class Died(Exception):
    """The control process dies here."""


class DyingPipelines(InMemoryPipelines):
    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> Any:
        raise Died(name)


def test_a_crash_between_the_intent_and_its_loop_is_repaired_by_the_sweep_once() -> None:
    pipelines = InMemoryPipelines()
    platform = in_memory_platform(pipelines=pipelines)
    platform.deployments.put(completed(), expected_revision=None)
    payloads = [parse_webhook((EVENTS / "alertmanager_v4_firing.json").read_bytes())]
    dying = replace(platform, pipelines=DyingPipelines())
    with pytest.raises(Died):
        rollouts.handle_alerts(dying, payloads)
    record = platform.deployments.get("iris-classifier")
    assert record is not None and record.status.intent is not None and not pipelines.started
    assert rollouts.handle_alerts(platform, payloads).rollbacks == ()  # the repeat is a duplicate
    assert not pipelines.started

    report = loop_sweeper.sweep_loops(platform)
    arn = pipelines.execution_arn(platform.settings.rollout_state_machine_arn, record.loop)
    assert [d.loop for d in report.started] == [record.loop]
    assert pipelines.started == {arn: {"deployment": "iris-classifier"}}
    again = loop_sweeper.sweep_loops(platform)  # its loop runs now
    assert again.started == () and again.stuck == ()
    actions = [e.action for e in platform.registry.history("iris")]  # type: ignore[attr-defined]
    assert actions.count("rollback-requested") == 1 and actions.count("loop-restarted") == 1
