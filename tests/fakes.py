"""In-memory fakes of the ports (control/ports.py), for fast use-case tests: no moto, no processes.

Each keeps the contract its Protocol documents (NotFound, PreconditionFailed, duplicate starts),
so a use case behaves as it does against the real adapters. The clusters are not faked: a use
case that reaches one here fails loudly ("must not be called"), so a test says what it touches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from control.domain.datasets import ObjectInfo
from control.domain.deployments import DeploymentRecord
from control.domain.pipelines import Started
from control.domain.registry import (
    Alias,
    HistoryEntry,
    Lineage,
    ModelSummary,
    ModelVersion,
    VersionStatus,
    check_transition,
    iso,
)
from control.domain.training_runs import RunRecord
from control.errors import NotFound, PreconditionFailed
from control.ports import Platform
from control.settings import Settings

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class InMemoryRegistry:
    """The registry's contract as the DynamoDB adapter keeps it: the same history actions and
    details, NotFound for an unknown model or version, nothing recorded for a change to what is."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.entries: list[HistoryEntry] = []
        self.alias_table: dict[str, dict[str, int]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self._dedupe: set[str] = set()

    def register_version(
        self, model_name: str, lineage: Lineage, *, actor: str, now: datetime
    ) -> tuple[ModelVersion, bool]:
        existing = self._versions_of(model_name)
        for version in existing:
            if version.lineage.training_run_id == lineage.training_run_id:
                return version, False
        number = len(existing) + 1
        version = ModelVersion(model_name, number, VersionStatus.REGISTERED, lineage, iso(now), iso(now))
        self.versions[(model_name, number)] = version
        self.alias_table.setdefault(model_name, {})
        details = {"artifact_sha256": lineage.artifact_sha256, "metrics": dict(lineage.metrics)}
        reason = f"training run {lineage.training_run_id}"
        self.record(HistoryEntry(model_name, iso(now), actor, "registered", reason, number, details))
        return version, True

    def get_version(self, model_name: str, version: int) -> ModelVersion:
        try:
            found = self.versions[(model_name, version)]
        except KeyError:
            raise NotFound(f"no version {version} of {model_name}", field="version") from None
        aliases = sorted(name for name, number in self.alias_table[model_name].items() if number == version)
        return replace(found, aliases=tuple(aliases))

    def list_versions(self, model_name: str) -> list[ModelVersion]:
        self.aliases(model_name)  # NotFound for an unknown model
        return [self.get_version(model_name, v.version) for v in self._versions_of(model_name)]

    def _versions_of(self, model_name: str) -> list[ModelVersion]:
        return [v for (name, _), v in sorted(self.versions.items()) if name == model_name]

    def list_models(self) -> list[ModelSummary]:
        return [
            ModelSummary(name, len(self._versions_of(name)), dict(aliases))
            for name, aliases in sorted(self.alias_table.items())
        ]

    def set_status(
        self, model_name: str, version: int, target: VersionStatus, *, actor: str, reason: str, now: datetime
    ) -> ModelVersion:
        current = self.get_version(model_name, version)
        check_transition(current.status, target)
        if current.status == target:
            return current
        self.versions[(model_name, version)] = replace(current, status=target, updated_at=iso(now), aliases=())
        details = {"from": current.status.value, "to": target.value}
        self.record(HistoryEntry(model_name, iso(now), actor, f"status-{target.value}", reason, version, details))
        return self.get_version(model_name, version)

    def set_alias(
        self,
        model_name: str,
        alias: Alias,
        version: int,
        *,
        actor: str,
        reason: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.get_version(model_name, version)  # NotFound for an unknown version
        if self.alias_table[model_name].get(alias.value) == version:
            return
        self.alias_table[model_name][alias.value] = version
        entry = HistoryEntry(
            model_name, iso(now), actor, "alias-set", reason, version, {"alias": alias.value, **(details or {})}
        )
        self.record(entry)

    def aliases(self, model_name: str) -> dict[str, int]:
        if model_name not in self.alias_table:
            raise NotFound(f"no model named {model_name!r}", field="model")
        return dict(self.alias_table[model_name])

    def record(self, entry: HistoryEntry, *, dedupe_key: str = "") -> bool:
        if dedupe_key:
            if dedupe_key in self._dedupe:
                return False
            self._dedupe.add(dedupe_key)
        self.entries.append(entry)
        return True

    def history(self, model_name: str) -> list[HistoryEntry]:
        return [entry for entry in self.entries if entry.model_name == model_name]

    def put_run(self, run_id: str, fields: Mapping[str, Any]) -> None:
        self.runs.setdefault(run_id, {}).update(fields)

    def get_run(self, run_id: str) -> RunRecord:
        if run_id not in self.runs:
            raise NotFound(f"no training run {run_id!r}", field="run_id")
        return RunRecord(run_id, dict(self.runs[run_id]))

    def list_runs(self) -> list[RunRecord]:
        return [self.get_run(run_id) for run_id in sorted(self.runs)]


class InMemoryDeployments:
    def __init__(self) -> None:
        self.records: dict[str, DeploymentRecord] = {}

    def get(self, deployment: str) -> DeploymentRecord | None:
        return self.records.get(deployment)

    def names(self) -> list[str]:
        return sorted(self.records)

    def put(self, record: DeploymentRecord, *, expected_revision: int | None) -> None:
        stored = self.records.get(record.status.deployment)
        if (None if stored is None else stored.status.revision) != expected_revision:
            raise PreconditionFailed(f"deployment {record.status.deployment} changed meanwhile")
        self.records[record.status.deployment] = record


class InMemoryObjects:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def head(self, bucket: str, key: str, version_id: str = "") -> ObjectInfo:
        body = self.read_bytes(bucket, key)
        return ObjectInfo(bucket, key, len(body), f"etag-{len(body)}", version_id or "v1")

    def read_bytes(self, bucket: str, key: str, max_bytes: int | None = None, version_id: str = "") -> bytes:
        try:
            body = self.objects[(bucket, key)]
        except KeyError:
            raise NotFound(f"no object s3://{bucket}/{key}", field="key") from None
        return body[:max_bytes] if max_bytes else body

    def read_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024, version_id: str = "") -> Any:
        return json.loads(self.read_bytes(bucket, key))

    def sha256(self, bucket: str, key: str) -> str:
        import hashlib

        return hashlib.sha256(self.read_bytes(bucket, key)).hexdigest()

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[(bucket, key)] = body

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects


class InMemoryPipelines:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}  # execution ARN -> input
        self.events: dict[str, list[dict[str, Any]]] = {}

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> Started:
        arn = self.execution_arn(state_machine_arn, name)
        duplicate = arn in self.started
        self.started.setdefault(arn, payload)
        return Started(arn, duplicate=duplicate)

    def execution_arn(self, state_machine_arn: str, name: str) -> str:
        return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def describe(self, execution_arn: str) -> dict[str, Any]:
        if execution_arn not in self.started:
            raise NotFound(f"no execution {execution_arn}")
        return {"execution_arn": execution_arn, "status": "RUNNING"}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        if execution_arn not in self.started:
            raise NotFound(f"no execution {execution_arn}")
        return list(self.events.get(execution_arn, []))

    def list_executions(self, state_machine_arn: str) -> list[dict[str, Any]]:
        prefix = state_machine_arn.replace(":stateMachine:", ":execution:") + ":"
        return [{"executionArn": arn} for arn in self.started if arn.startswith(prefix)]


@dataclass
class FixedMetrics:
    """Answers each query from `values` (None: no data); `failure` is raised instead when set."""

    values: dict[str, float | None] = field(default_factory=dict)
    failure: Exception | None = None

    def value(self, query: str) -> float | None:
        if self.failure is not None:
            raise self.failure
        return self.values.get(query)


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, *, source: str, error: str, reason: str, payload: Any, now: datetime) -> None:
        self.sent.append({"source": source, "error": error, "reason": reason, "payload": payload})


class NoUsage:
    """ResourceUsage with nothing measured (a cluster that reports no metrics)."""

    def worker_usage(self, job_name: str, *, workers: int, since: datetime, now: datetime) -> list[Any]:
        return []


class MustNotBeCalled:
    """A cluster (or file system) a use case must not reach in this test."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        raise AssertionError(f"the {self._name} was called ({attribute}) but this test gives none")


SETTINGS = Settings(
    region="us-east-1",
    data_bucket="data",
    artifacts_bucket="artifacts",
    registry_table="registry",
    training_state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:training",
    rollout_state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:rollout",
)


def in_memory_platform(settings: Settings = SETTINGS, **ports: Any) -> Platform:
    """A Platform of in-memory fakes; `ports` replace any of them (e.g. metrics=FixedMetrics(...))."""
    defaults: dict[str, Any] = {
        "registry": InMemoryRegistry(),
        "deployments": InMemoryDeployments(),
        "objects": InMemoryObjects(),
        "staging": MustNotBeCalled("dataset stager"),
        "efs": MustNotBeCalled("checkpoint file system"),
        "pipelines": InMemoryPipelines(),
        "dead_letters": RecordingDeadLetters(),
        "metrics": FixedMetrics(),
        "training": MustNotBeCalled("training cluster"),
        "usage": NoUsage(),
        "serving": MustNotBeCalled("serving cluster"),
        "alert_token": lambda: "alert-token",
        "clock": lambda: NOW,
    }
    return Platform(settings=settings, **(defaults | ports))
