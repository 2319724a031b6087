"""An alert's path to the rollback loop: one read of the deployment record, one conditional write,
the loop's start, and only then the history entry, which keeps the time the alert was received."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from control.domain.alert_payload import parse_webhook
from control.domain.deployments import DeploymentRecord
from control.domain.rollout import Phase, RolloutSpec, start_rollout
from control.errors import TransientError
from control.usecases import rollouts
from tests.fakes import NOW, InMemoryDeployments, InMemoryPipelines, InMemoryRegistry, in_memory_platform

EVENTS = Path(__file__).resolve().parents[1] / "events"


class Journal:
    """What the in-memory ports were asked, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class JournaledDeployments(InMemoryDeployments):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal
        self.interleave: list[DeploymentRecord] = []  # writes another writer makes before our next put

    def get(self, deployment: str) -> DeploymentRecord | None:
        self.journal.calls.append("read")
        return super().get(deployment)

    def put(self, record: DeploymentRecord, *, expected_revision: int | None) -> None:
        if self.interleave:
            other = self.interleave.pop(0)
            super().put(other, expected_revision=other.status.revision - 1)
        self.journal.calls.append("write")
        super().put(record, expected_revision=expected_revision)


class JournaledPipelines(InMemoryPipelines):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> Any:
        self.journal.calls.append(f"start {name}")
        return super().start(state_machine_arn, name, payload)


class JournaledRegistry(InMemoryRegistry):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def record(self, entry: Any, *, dedupe_key: str = "") -> bool:
        self.journal.calls.append(f"history {entry.action}")
        return super().record(entry, dedupe_key=dedupe_key)


def setup() -> tuple[Any, Journal, JournaledDeployments, list[Any]]:
    """A deployment that finished rolling v2 out over v1, and a clock that moves 1 s per reading."""
    journal = Journal()
    deployments = JournaledDeployments(journal)
    spec = RolloutSpec(deployment="iris-api", model="iris", version=2, previous_version=1)
    status = replace(start_rollout(spec, NOW), phase=Phase.COMPLETED, active_version=2)
    deployments.records["iris-api"] = DeploymentRecord(spec, status)
    readings: list[Any] = []

    def clock() -> Any:
        readings.append(NOW + timedelta(seconds=len(readings)))
        return readings[-1]

    platform = in_memory_platform(
        deployments=deployments,
        pipelines=JournaledPipelines(journal),
        registry=JournaledRegistry(journal),
        clock=clock,
    )
    return platform, journal, deployments, readings


def firing() -> Any:
    payload = json.loads((EVENTS / "alertmanager_v4_firing.json").read_text())
    for alert in payload["alerts"]:
        alert["labels"] |= {"deployment": "iris-api", "version": "2", "severity": "critical"}
        alert["fingerprint"] = uuid.uuid4().hex[:16]
    payload["commonLabels"] |= {"deployment": "iris-api"}
    return parse_webhook(payload)


def test_an_alert_reads_the_record_once_writes_the_intent_starts_the_loop_then_records_history() -> None:
    platform, journal, deployments, readings = setup()

    handled = rollouts.handle_alerts(platform, [firing()])

    assert [a.ignored for a in handled.rollbacks] == [""], handled
    record = deployments.records["iris-api"]
    assert record.status.intent is not None and record.loop == f"iris-api-r{record.status.revision}"
    assert journal.calls == ["read", "write", f"start {record.loop}", "history rollback-requested"]
    (entry,) = platform.registry.history("iris")
    received = readings[1]  # the handler's own reading is the first; the intent's the second
    assert entry.at == rollouts.iso(received), (entry.at, readings)


def test_a_write_by_someone_else_between_the_read_and_the_intent_is_read_again_and_the_intent_recorded() -> None:
    platform, journal, deployments, _ = setup()
    current = deployments.records["iris-api"]
    other = replace(current, status=replace(current.status, revision=current.status.revision + 1))
    deployments.interleave.append(other)

    rollouts.handle_alerts(platform, [firing()])

    record = deployments.records["iris-api"]
    assert record.status.intent is not None and record.status.revision == current.status.revision + 2
    assert journal.calls == ["read", "write", "read", "write", f"start {record.loop}", "history rollback-requested"]


def test_a_deployment_that_keeps_changing_is_a_transient_error_with_no_loop_started_and_no_history() -> None:
    platform, journal, deployments, _ = setup()
    current = deployments.records["iris-api"]
    deployments.interleave.extend(
        replace(current, status=replace(current.status, revision=current.status.revision + n)) for n in range(1, 6)
    )

    with pytest.raises(TransientError):
        rollouts.handle_alerts(platform, [firing()])
    assert not any(call.startswith(("start", "history")) for call in journal.calls), journal.calls
    assert deployments.records["iris-api"].status.intent is None
