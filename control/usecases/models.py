"""Registry use cases: browse models and versions, approve or reject, read the history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control.domain.names import check_name
from control.domain.registry import VersionStatus, iso, serving_at
from control.errors import InvalidInput
from control.ports import Platform

MAX_REASON = 1000


def parse_version(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"version must be a positive integer; got {raw!r}", field="version")
    return int(raw)


def list_models(platform: Platform) -> dict[str, Any]:
    return {"models": platform.registry.list_models()}


def list_versions(platform: Platform, model_name: str) -> dict[str, Any]:
    check_name(model_name, "model")
    return {"model_name": model_name, "versions": [v.to_dict() for v in platform.registry.list_versions(model_name)]}


def get_version(platform: Platform, model_name: str, version: str) -> dict[str, Any]:
    check_name(model_name, "model")
    return platform.registry.get_version(model_name, parse_version(version)).to_dict()


def decide(platform: Platform, model_name: str, version: str, decision: str, body: Any, actor: str) -> dict[str, Any]:
    """Approve or reject a version, with a reason that goes into the history."""
    check_name(model_name, "model")
    targets = {"approve": VersionStatus.APPROVED, "reject": VersionStatus.REJECTED}
    if decision not in targets:
        raise InvalidInput(f"decision must be approve or reject; got {decision!r}", field="decision")
    reason = (body or {}).get("reason", "") if isinstance(body, dict) or body is None else None
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidInput(f"reason must be a string of at most {MAX_REASON} characters", field="reason")
    updated = platform.registry.set_status(
        model_name,
        parse_version(version),
        targets[decision],
        actor=actor,
        reason=reason or f"{decision}d by {actor}",
        now=platform.clock(),
    )
    return updated.to_dict()


def history(platform: Platform, model_name: str, at: str | None = None) -> dict[str, Any]:
    """Every change to the model; with `at` (ISO 8601), also what served production then."""
    check_name(model_name, "model")
    platform.registry.aliases(model_name)  # NotFound for an unknown model
    entries = platform.registry.history(model_name)
    result: dict[str, Any] = {"model_name": model_name, "history": [e.to_dict() for e in entries]}
    if at:
        moment = iso(_parse_time(at))
        result["production_at"] = {"at": moment, "version": serving_at(entries, moment)}
    return result


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(
            f"at must be an ISO 8601 time, e.g. 2026-11-26T19:30:00Z; got {text!r}", field="at"
        ) from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
