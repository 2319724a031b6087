"""Retention through the CLI and the API, against the embedded platform's local EFS folder."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from control.adapters.aws import client
from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.cli import main
from tests.support.lineage import lineage


@pytest.fixture(scope="module")
def registry(endpoints) -> DynamoDbRegistry:
    return DynamoDbRegistry(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )


@pytest.fixture
def cli(embedded, tmp_path):
    endpoints_file = tmp_path / "endpoints.json"
    embedded.write_endpoints(endpoints_file)
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(main, list(args), env={"MLCP_ENDPOINTS": str(endpoints_file)})
        assert result.exit_code == 0, result.output
        return result

    return invoke


def folder(root: Path, relative: str, age_seconds: float) -> Path:
    path = root / relative
    path.mkdir(parents=True)
    (path / "payload").write_bytes(b"x" * 10)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_retention_lists_then_removes_by_policy_keeping_lineage_and_unfinished_runs(embedded, registry, cli, api):
    model = f"ret-{uuid.uuid4().hex[:6]}"
    efs = embedded.state_dir / "cluster" / "checkpoints"
    registered_dataset = folder(efs, f"datasets/{model}/v1/aaaa", 400)
    old_dataset = folder(efs, f"datasets/{model}/v2/bbbb", 300)
    newest_dataset = folder(efs, f"datasets/{model}/v3/cccc", 10)
    runs = {name: f"{model}-{name}" for name in ("registered", "old", "newest", "unfinished")}
    for name, age, status in (("registered", 400, "REGISTERED"), ("old", 300, "FAILED"), ("newest", 10, "FAILED")):
        registry.put_run(runs[name], {"model_name": model, "status": status})
        folder(efs, runs[name], age)
    registry.put_run(runs["unfinished"], {"model_name": model, "status": "TRAINING"})
    folder(efs, runs["unfinished"], 500)
    registry.register_version(
        model,
        lineage(model, runs["registered"]),
        actor="test",
        now=datetime.now(UTC),
    )

    dry = json.loads(cli("runs", "retention", "--model", model, "--keep-last", "1", "--dry-run", "--json").stdout)
    expected = {old_dataset.relative_to(efs).as_posix(), runs["old"]}
    assert {d["path"] for d in dry["would_remove"]} == expected
    assert old_dataset.exists() and (efs / runs["old"]).exists(), "a dry run removes nothing"
    kept = {d["path"]: d["reason"] for d in dry["kept"]}
    assert "registered" in kept[registered_dataset.relative_to(efs).as_posix()]
    assert "unfinished" in kept[runs["unfinished"]] or "registered" in kept[runs["unfinished"]]

    human = cli("runs", "retention", "--model", model, "--keep-last", "1", "--dry-run")
    assert "would remove 2" in human.stdout

    applied = api.post("/retention", json={"model": model, "keep_last": 1, "dry_run": False})
    assert applied.status_code == 200, applied.text
    assert {d["path"] for d in applied.json()["removed"]} == expected
    assert not old_dataset.exists() and not (efs / runs["old"]).exists()
    assert registered_dataset.exists() and newest_dataset.exists() and (efs / runs["unfinished"]).exists()


def test_retention_refuses_bad_input_naming_the_field(api):
    answer = api.post("/retention", json={"keep_last": 0})
    assert answer.status_code == 400 and answer.json()["field"] == "keep_last"
    answer = api.post("/retention", json={"dry_run": "no"})
    assert answer.status_code == 400 and answer.json()["field"] == "dry_run"
