"""Scheduled functions: an EventBridge rule invokes each on its rate (terraform/modules/functions/
schedules.tf); the embedded runtime's local scheduler invokes the same function at a shorter one."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import current_platform, logger
from control.usecases.loop_sweeper import sweep_loops

schedules = Blueprint(__name__)

# The rate AWS runs the sweep at: a rollback intent left without its loop waits at most this long.
SWEEP_ROLLOUTS_SCHEDULE = "rate(1 minute)"


@schedules.schedule(SWEEP_ROLLOUTS_SCHEDULE, name="sweep_rollouts", description="Start missing rollout loops")
def sweep_rollouts(event: Any) -> dict[str, Any]:
    """Start the reconcile loop of every deployment whose recorded intent or rollout has none."""
    report = sweep_loops(current_platform())
    for started in report.started:
        logger.warning(
            "rollout loop started by the sweeper",
            extra={"deployment": started.deployment, "loop": started.loop, "reason": started.reason},
        )
    for stuck in report.stuck:
        logger.error(
            "rollout loop ended with work pending",
            extra={"deployment": stuck.deployment, "loop": stuck.loop, "reason": stuck.reason},
        )
    return report.to_dict()
