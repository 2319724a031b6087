"""MPIJob status (as mpi-operator v0.8.0 writes it) → the control plane's JobStatus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control.domain.training import JobState, JobStatus


def _true_conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in conditions if c.get("status") == "True"}


def mpijob_status(name: str, obj: Mapping[str, Any]) -> JobStatus:
    """Terminal conditions win over Running; Restarting counts as running; no condition is pending.

    The operator keeps old conditions (Created stays True), so the order of checks matters, not
    the order of the list.
    """
    true = _true_conditions(obj)
    for condition_type, state in (("Succeeded", JobState.SUCCEEDED), ("Failed", JobState.FAILED)):
        if condition_type in true:
            condition = true[condition_type]
            return JobStatus(name, state, condition.get("reason", ""), condition.get("message", ""))
    for condition_type in ("Running", "Restarting"):
        if condition_type in true:
            condition = true[condition_type]
            return JobStatus(name, JobState.RUNNING, condition.get("reason", ""), condition.get("message", ""))
    if "Suspended" in true:
        condition = true["Suspended"]
        return JobStatus(name, JobState.PENDING, condition.get("reason", "Suspended"), condition.get("message", ""))
    if "Created" in true:
        condition = true["Created"]
        return JobStatus(name, JobState.PENDING, condition.get("reason", ""), condition.get("message", ""))
    return JobStatus(name, JobState.PENDING, "Submitted", "waiting for mpi-operator to pick the job up")
