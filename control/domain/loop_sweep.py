"""The loop sweeper's decision: which deployments have recorded work that no reconcile loop is doing.

A rollback intent (or a rollout, or a manual promotion) is recorded first and its loop started
after; a control process that dies in between leaves the record naming a loop that never ran, and
a repeated alert is a duplicate, so nothing would ever act on it. On a schedule the sweeper looks
at each such record and the execution its loop name names, and starts the missing one under that
very name: Step Functions refuses a second start of a name, so a sweep racing the original start
(or another sweep) runs nothing twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from control.domain.deployments import DeploymentRecord


class LoopState(enum.StrEnum):
    """What Step Functions says of the execution a record names."""

    MISSING = "MISSING"  # never started
    RUNNING = "RUNNING"
    ENDED = "ENDED"  # succeeded, failed, timed out or aborted

    @classmethod
    def of(cls, execution_status: str | None) -> LoopState:
        """From DescribeExecution's status (None: no such execution)."""
        if execution_status is None:
            return cls.MISSING
        # PENDING_REDRIVE: a redrive was asked for and will run it again.
        return cls.RUNNING if execution_status in ("RUNNING", "PENDING_REDRIVE") else cls.ENDED


class SweepAction(enum.StrEnum):
    START = "start"  # the loop the record names never ran: start it under that name
    STUCK = "stuck"  # it ran and ended with the work still pending: a person must look (its cause is in its history)


@dataclass(frozen=True)
class SweepDecision:
    deployment: str
    loop: str
    action: SweepAction
    reason: str


def pending_work(record: DeploymentRecord) -> str:
    """Why the record needs a running loop ("" when it is at rest): a rollback intent not acted on, a
    rollout in progress (a rollback in progress included), or a manual promotion not acted on.

    A record with no loop name is stepped by hand (no loop owns it): the sweeper leaves it alone."""
    if not record.loop:
        return ""
    status = record.status
    if status.intent is not None and status.phase.accepts_rollback:
        return f"rollback requested by {status.intent.describe()}"
    if status.phase.in_progress:
        return f"rollout of v{status.target_version} is {status.phase.value}"
    return ""


def decide_sweep(record: DeploymentRecord, loop: LoopState) -> SweepDecision | None:
    """What the sweeper does about one deployment, given the state of the loop its record names."""
    work = pending_work(record)
    if not work or loop is LoopState.RUNNING:
        return None
    deployment = record.status.deployment
    if loop is LoopState.MISSING:
        return SweepDecision(deployment, record.loop, SweepAction.START, f"{work}; loop {record.loop} never started")
    return SweepDecision(deployment, record.loop, SweepAction.STUCK, f"{work}; loop {record.loop} ended")
