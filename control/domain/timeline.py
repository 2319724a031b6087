"""A readable timeline of a pipeline execution, from its Step Functions history events (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Step:
    at: datetime
    state: str
    event: str  # entered | succeeded | failed | retried | execution-...
    detail: str = ""


def steps_from_history(events: list[dict[str, Any]]) -> list[Step]:
    """Keep what a person wants to see: each state entered, each failure with its cause."""
    steps: list[Step] = []
    current = ""
    for event in events:
        kind, at = event["type"], event["timestamp"]
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
            steps.append(Step(at, current, "entered"))
        elif kind.endswith("Failed") and kind != "ExecutionFailed":
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("FailedEventDetails")), {})
            cause = readable_cause(details.get("cause", ""))
            steps.append(Step(at, current, "failed", f"{details.get('error', '')}: {cause}"))
        elif kind in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            details = event.get("executionFailedEventDetails", {})
            detail = f"{details.get('error', '')}: {details.get('cause', '')}" if details else ""
            steps.append(Step(at, "", kind.removeprefix("Execution").lower(), detail))
    return steps


def readable_cause(cause: Any) -> str:
    """A Lambda error's Cause is JSON {errorType, errorMessage, stackTrace}: keep the message."""
    if not isinstance(cause, str):
        return str(cause)
    try:
        parsed = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    return str(parsed.get("errorMessage", cause)) if isinstance(parsed, dict) else cause
