"""The scheduled sweep: start the reconcile loop of every deployment whose recorded work has none.

Run by the `sweep_rollouts` function (an EventBridge schedule in AWS, the local scheduler here).
A record names its loop before the loop starts (the intent is recorded first), so a control process
that died in between left a loop name that Step Functions has never seen: the sweep starts it under
that name (a duplicate start is refused by Step Functions, never run twice), and writes the audit
entries the dead process did not. A loop that ran and ended with the work pending is reported, not
restarted (a step that failed for good would fail again at every sweep).
"""

from __future__ import annotations

from dataclasses import dataclass

from control.domain.loop_sweep import LoopState, SweepAction, SweepDecision, decide_sweep, pending_work
from control.domain.registry import HistoryEntry, iso
from control.errors import NotFound
from control.ports import Platform
from control.usecases.rollouts import rollback_requested_entry

ACTOR = "loop-sweeper"


@dataclass(frozen=True)
class SweepReport:
    """What one sweep looked at and did."""

    deployments: int  # records read
    started: tuple[SweepDecision, ...]  # loops started (or found started by someone meanwhile)
    stuck: tuple[SweepDecision, ...]  # loops that ended with work pending

    def to_dict(self) -> dict[str, object]:
        return {
            "deployments": self.deployments,
            "started": [{"deployment": d.deployment, "loop": d.loop, "reason": d.reason} for d in self.started],
            "stuck": [{"deployment": d.deployment, "loop": d.loop, "reason": d.reason} for d in self.stuck],
        }


def sweep_loops(platform: Platform) -> SweepReport:
    """Each deployment with pending work and no running loop: its loop started, or reported stuck."""
    machine = platform.settings.rollout_state_machine_arn
    started: list[SweepDecision] = []
    stuck: list[SweepDecision] = []
    names = platform.deployments.names()
    for name in names:
        record = platform.deployments.get(name)
        if record is None or not pending_work(record):  # at rest: no execution to look up
            continue
        decision = decide_sweep(record, _loop_state(platform, machine, record.loop))
        if decision is None:
            continue
        if decision.action is SweepAction.STUCK:
            stuck.append(decision)
            continue
        platform.pipelines.start(machine, decision.loop, {"deployment": name})
        started.append(decision)
        now = platform.clock()
        intent = record.status.intent
        if intent is not None:  # the dying process's audit entry, written once whoever writes it
            entry, key = rollback_requested_entry(record.spec, intent)
            platform.registry.record(entry, dedupe_key=key)
        platform.registry.record(
            HistoryEntry(
                model_name=record.spec.model,
                at=iso(now),
                actor=ACTOR,
                action="loop-restarted",
                reason=decision.reason,
                version=record.spec.version,
                details={"deployment": name, "loop": decision.loop},
            ),
            dedupe_key=f"{name}#{decision.loop}#loop-restarted",
        )
    return SweepReport(len(names), tuple(started), tuple(stuck))


def _loop_state(platform: Platform, machine: str, loop: str) -> LoopState:
    try:
        described = platform.pipelines.describe(platform.pipelines.execution_arn(machine, loop))
    except NotFound:
        return LoopState.MISSING
    return LoopState.of(str(described["status"]))
