"""Model registry rules: versions, statuses, aliases, lineage and history. Pure values."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from control.errors import Conflict, InvalidInput


class VersionStatus(enum.StrEnum):
    REGISTERED = "registered"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEPLOYED = "deployed"
    RETIRED = "retired"


ALLOWED_TRANSITIONS: Mapping[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.REGISTERED: frozenset({VersionStatus.APPROVED, VersionStatus.REJECTED}),
    VersionStatus.APPROVED: frozenset({VersionStatus.REJECTED, VersionStatus.DEPLOYED}),
    VersionStatus.DEPLOYED: frozenset({VersionStatus.RETIRED, VersionStatus.APPROVED}),
    VersionStatus.REJECTED: frozenset(),
    VersionStatus.RETIRED: frozenset({VersionStatus.DEPLOYED}),
}


class Alias(enum.StrEnum):
    PRODUCTION = "production"
    PREVIOUS = "previous"
    CANDIDATE = "candidate"


def check_transition(current: VersionStatus, target: VersionStatus) -> None:
    if target == current:
        return
    if target not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "none"
        raise Conflict(f"a {current} version cannot become {target} (allowed: {allowed})", field="status")


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from: enough to reproduce and audit it."""

    dataset_uri: str
    dataset_etag: str
    dataset_version_id: str
    training_run_id: str
    execution_arn: str
    hyperparameters: Mapping[str, Any]
    metrics: Mapping[str, float]
    artifact_uri: str
    artifact_sha256: str
    code_version: str
    framework: str = ""
    workers: int = 0
    trained_at: str = ""
    # A few held-out rows as a request the model server accepts; the rollout's preview traffic sends it.
    sample_request_uri: str = ""

    def __post_init__(self) -> None:
        if len(self.artifact_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.artifact_sha256):
            raise InvalidInput("artifact_sha256 must be 64 lower-case hex digits", field="artifact_sha256")
        if not self.artifact_uri.startswith("s3://"):
            raise InvalidInput("artifact_uri must be an s3:// URI", field="artifact_uri")
        if self.sample_request_uri and not self.sample_request_uri.startswith("s3://"):
            raise InvalidInput("sample_request_uri must be an s3:// URI", field="sample_request_uri")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelVersion:
    model_name: str
    version: int
    status: VersionStatus
    lineage: Lineage
    created_at: str
    updated_at: str
    aliases: Sequence[str] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "status": self.status.value,
            "aliases": list(self.aliases),
            "lineage": self.lineage.to_dict(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class ModelSummary:
    """One registered model as the model list shows it: its latest version number and its aliases."""

    model_name: str
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)
    created_at: str | None = None  # ISO UTC; None where the store keeps no time
    updated_at: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One append-only change: who did what to which version, why, and when."""

    model_name: str
    at: str
    actor: str
    action: str
    reason: str
    version: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iso(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def serving_at(history: Sequence[HistoryEntry], at: str, alias: str = Alias.PRODUCTION) -> int | None:
    """Which version held `alias` at time `at` (ISO UTC), from the model's history."""
    serving: int | None = None
    for entry in sorted(history, key=lambda e: e.at):
        if entry.at > at:
            break
        if entry.action == "alias-set" and entry.details.get("alias") == alias:
            serving = entry.version
        elif entry.action == "alias-removed" and entry.details.get("alias") == alias:
            serving = None
    return serving
