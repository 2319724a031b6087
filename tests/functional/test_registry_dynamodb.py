"""The DynamoDB registry against the embedded AWS (moto's server)."""

import threading
import uuid
from datetime import UTC, datetime

import pytest

from control.adapters.aws import client
from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.domain.registry import Alias, VersionStatus, serving_at
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
