"""Status the cluster writes, read back: an MPIJob's (as mpi-operator v0.8.0 writes it) → the
control plane's JobStatus; a version's HPA and VPA → what `GET /deployments/{name}` shows."""

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


def autoscaling_status(hpa: Mapping[str, Any] | None, vpa: Mapping[str, Any] | None) -> dict[str, Any]:
    """The HPA's bounds and replicas beside the VPA's recommendation (VPA writes
    status.recommendation.containerRecommendations: target, lowerBound, upperBound, uncappedTarget
    per container; nothing until its recommender has seen enough samples)."""
    shown: dict[str, Any] = {"hpa": None, "vpa": None}
    if hpa:
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        targets = [
            m["resource"]["target"].get("averageUtilization")
            for m in spec.get("metrics") or []
            if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
        ]
        shown["hpa"] = {
            "min_replicas": spec.get("minReplicas"),
            "max_replicas": spec.get("maxReplicas"),
            "target_cpu_utilization": targets[0] if targets else None,
            "current_replicas": status.get("currentReplicas"),
            "desired_replicas": status.get("desiredReplicas"),
        }
    if vpa:
        recommendations = ((vpa.get("status") or {}).get("recommendation") or {}).get("containerRecommendations")
        shown["vpa"] = {
            "update_mode": ((vpa.get("spec") or {}).get("updatePolicy") or {}).get("updateMode", "Auto"),
            "recommendation": [
                {
                    "container": r.get("containerName"),
                    "target": r.get("target"),
                    "lower_bound": r.get("lowerBound"),
                    "upper_bound": r.get("upperBound"),
                    "uncapped_target": r.get("uncappedTarget"),
                }
                for r in recommendations or []
            ]
            or None,
        }
    return shown
