"""The DynamoDB registry against the embedded AWS (moto's server)."""

import threading
import uuid
from datetime import UTC, datetime

import pytest

from control.adapters.aws import client
from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.domain.registry import Alias, ModelSummary, VersionStatus, serving_at
from control.domain.training_runs import RunRecord
from control.errors import Conflict, NotFound
from tests.support.lineage import lineage


@pytest.fixture
def registry(endpoints):
    return DynamoDbRegistry(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )


def now() -> datetime:
    return datetime.now(UTC)


def test_concurrent_registrations_number_versions_without_gaps(registry):
    model = f"concurrent-{uuid.uuid4().hex[:6]}"
    results: list[int] = []
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            version, created = registry.register_version(model, lineage("m", f"run-{i}"), actor="test", now=now())
            assert created
            results.append(version.version)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results) == list(range(1, 25))
    assert [v.version for v in registry.list_versions(model)] == list(range(1, 25))
    assert len([e for e in registry.history(model) if e.action == "registered"]) == 24


def test_registering_the_same_run_twice_returns_its_version(registry):
    model = f"idem-{uuid.uuid4().hex[:6]}"
    first, created = registry.register_version(model, lineage("m", "run-a"), actor="t", now=now())
    again, created_again = registry.register_version(model, lineage("m", "run-a"), actor="t", now=now())
    assert (first.version, created, again.version, created_again) == (1, True, 1, False)
    assert again.lineage == lineage("m", "run-a")


def test_status_changes_are_checked_and_recorded(registry):
    model = f"status-{uuid.uuid4().hex[:6]}"
    registry.register_version(model, lineage("m", "r1"), actor="t", now=now())
    approved = registry.set_status(model, 1, VersionStatus.APPROVED, actor="alice", reason="looks good", now=now())
    assert approved.status == VersionStatus.APPROVED
    registry.set_status(model, 1, VersionStatus.REJECTED, actor="bob", reason="bias found", now=now())
    with pytest.raises(Conflict):
        registry.set_status(model, 1, VersionStatus.APPROVED, actor="alice", reason="again", now=now())
    entries = [(e.actor, e.action, e.reason) for e in registry.history(model)]
    assert ("alice", "status-approved", "looks good") in entries
    assert ("bob", "status-rejected", "bias found") in entries


def test_aliases_and_what_served_production_when(registry):
    model = f"alias-{uuid.uuid4().hex[:6]}"
    for run in ("r1", "r2"):
        registry.register_version(model, lineage("m", run), actor="t", now=now())
    registry.set_alias(model, Alias.PRODUCTION, 1, actor="rollout", reason="first deploy", now=now())
    between = now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    registry.set_alias(model, Alias.PRODUCTION, 2, actor="rollout", reason="promoted", now=now())
    assert registry.aliases(model) == {"production": 2}
    assert registry.get_version(model, 2).aliases == ("production",)
    assert serving_at(registry.history(model), between) == 1


def test_unknown_models_and_versions_are_not_found(registry):
    with pytest.raises(NotFound):
        registry.get_version("no-such-model", 1)
    with pytest.raises(NotFound):
        registry.list_versions("no-such-model")


def test_runs_and_the_model_list_come_back_as_domain_values_and_the_api_shows_them_as_before(registry, api):
    model = f"listed-{uuid.uuid4().hex[:6]}"
    registry.register_version(model, lineage(model, f"{model}-r1"), actor="test", now=now())
    run_id = f"{model}-r2"
    fields = {"status": "STAGING", "model_name": model, "staging": {"folder": f"datasets/{model}/v1/abc", "files": 1}}
    registry.put_run(run_id, fields)
    registry.put_run(run_id, {"recommendation": {"cpu_millicores": 500}, "measured_at": "2026-12-07T00:00:00Z"})

    record = registry.get_run(run_id)
    assert isinstance(record, RunRecord) and record.run_id == run_id
    assert (record.model_name, record.status, record.staging_folder) == (model, "STAGING", f"datasets/{model}/v1/abc")
    assert record.recommendation == {"cpu_millicores": 500}
    assert record in registry.list_runs()
    [summary] = [m for m in registry.list_models() if m.model_name == model]
    assert isinstance(summary, ModelSummary) and (summary.latest_version, dict(summary.aliases)) == (1, {})
    assert summary.created_at and summary.updated_at

    # The handlers shape them into the same JSON as ever.
    runs = api.get("/training-runs").json()["runs"]
    shown = {"run_id": run_id, **fields, "recommendation": {"cpu_millicores": 500}, "measured_at": record.measured_at}
    assert shown in runs
    listed = next(m for m in api.get("/models").json()["models"] if m["model_name"] == model)
    assert listed == {
        "model_name": model,
        "latest_version": 1,
        "aliases": {},
        "created_at": summary.created_at,
        "updated_at": summary.updated_at,
    }
