"""What a caller asks of the model registry, parsed and checked: a version number, an approval or a
rejection with its reason, a history query; and the history it gets back. Pure values."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control.domain.names import check_name
from control.domain.registry import HistoryEntry, VersionStatus
from control.errors import InvalidInput

MAX_REASON = 1000


def parse_version(raw: str) -> int:
    """A version number as it comes in a path: a positive integer."""
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"version must be a positive integer; got {raw!r}", field="version")
    return int(raw)


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"

    @property
    def target(self) -> VersionStatus:
        return VersionStatus.APPROVED if self is Decision.APPROVE else VersionStatus.REJECTED


@dataclass(frozen=True)
class VersionDecision:
    """`POST /models/{name}/versions/{version}/{approve|reject}`, parsed. An empty reason: the
    history records who decided."""

    model_name: str
    version: int
    decision: Decision
    reason: str = ""

    @classmethod
    def parse(cls, model_name: str, version: str, decision: str, body: Any) -> VersionDecision:
        check_name(model_name, "model")
        if decision not in {d.value for d in Decision}:
            raise InvalidInput(f"decision must be approve or reject; got {decision!r}", field="decision")
        reason = (body or {}).get("reason", "") if isinstance(body, Mapping) or body is None else None
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise InvalidInput(f"reason must be a string of at most {MAX_REASON} characters", field="reason")
        return cls(model_name, parse_version(version), Decision(decision), reason)


@dataclass(frozen=True)
class HistoryQuery:
    """`GET /models/{name}/history[?at=...]`: every change, and with `at`, what served production then."""

    model_name: str
    at: datetime | None = None

    @classmethod
    def parse(cls, model_name: str, at: str | None) -> HistoryQuery:
        check_name(model_name, "model")
        return cls(model_name, parse_time(at) if at else None)


@dataclass(frozen=True)
class ProductionAt:
    at: str  # ISO UTC
    version: int | None  # None: nothing served production then


@dataclass(frozen=True)
class ModelHistory:
    model_name: str
    entries: Sequence[HistoryEntry]
    production_at: ProductionAt | None = None  # asked for with `at`


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (`Z` or an offset; none: UTC), in UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(
            f"at must be an ISO 8601 time, e.g. 2026-11-26T19:30:00Z; got {text!r}", field="at"
        ) from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
