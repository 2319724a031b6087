"""The CLI through its entry point (`control.cli.main`) against the embedded platform.

No training runs: registry entries are written with the DynamoDB adapter, deployment state with
the deployments adapter, and the one run started here fails in its first step (no label column).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from control.adapters.aws import client
from control.adapters.dynamodb_deployments import DynamoDbDeployments
from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.cli import main
from control.domain.canary import parse_strategy
from control.domain.deployments import DeploymentRecord
from control.domain.registry import Alias, VersionStatus
from control.domain.rollout import Phase, RolloutSpec, start_rollout
from control.local.processes import free_port
from tests.support.lineage import lineage

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def endpoints_file(embedded, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "endpoints.json"
    embedded.write_endpoints(path)
    return path


@pytest.fixture(scope="module")
def registry(endpoints) -> DynamoDbRegistry:
    return DynamoDbRegistry(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )


@pytest.fixture
def cli(endpoints_file, monkeypatch):
    """Runs `python -m control ARGS` in-process with the endpoints file from the environment."""
    for name in ("MLCP_ENDPOINTS", "MLCP_API_URL", "MLCP_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), env={"MLCP_ENDPOINTS": str(endpoints_file), **(env or {})})

    return invoke


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def register(registry: DynamoDbRegistry, model: str, count: int, at: datetime | None = None) -> None:
    for i in range(1, count + 1):
        registry.register_version(
            model, lineage(model, f"{model}-run-{i}", accuracy=0.8 + i / 100), actor="test", now=at or datetime.now(UTC)
        )


def as_json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error_json(result) -> dict:
    """The error a --json command writes to stderr: its last line (in-process, the embedded API's
    request log shares stderr; run as `python -m control` it is the only line)."""
    return json.loads(result.stderr.strip().splitlines()[-1])


# -- help: every action is listed -------------------------------------------------------------------


def test_help_of_the_real_entry_point_lists_every_action():
    top = subprocess.run(
        [sys.executable, "-m", "control", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert top.returncode == 0, top.stderr
    for group in ("up", "demo", "runs", "models", "deployments"):
        assert group in top.stdout
    assert "Exit codes" in top.stdout
    expected = {
        "runs": ("start", "list", "show", "follow", "timeline"),
        "models": ("list", "versions", "show", "approve", "reject", "history"),
        "deployments": ("list", "show", "deploy", "watch", "rollback", "promote", "abort", "strategy", "history"),
    }
    runner = CliRunner()
    for group, commands in expected.items():
        result = runner.invoke(main, [group, "--help"])
        assert result.exit_code == 0
        for command in commands:
            assert f"  {command} " in result.stdout, (group, command, result.stdout)


# -- models -----------------------------------------------------------------------------------------


def test_models_and_versions_with_lineage_as_tables_and_json(cli, registry):
    model = unique("cli-list")
    register(registry, model, 2)

    models = as_json(cli("models", "list", "--json"))
    assert isinstance(models, list)
    mine = next(m for m in models if m["model_name"] == model)
    assert mine["latest_version"] == 2

    versions = as_json(cli("models", "versions", model, "--json"))
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["lineage"]["training_run_id"] == f"{model}-run-1"
    assert versions[0]["status"] == "registered"

    table = cli("models", "versions", model)
    assert table.exit_code == 0
    assert "v1" in table.stdout and "v2" in table.stdout and f"{model}-run-2" in table.stdout

    shown = as_json(cli("models", "show", model, "v2", "--json"))
    assert shown == versions[1]
    human = cli("models", "show", model, "2")
    assert human.exit_code == 0
    assert "s3://art/models/" in human.stdout and "val_accuracy" in human.stdout


def test_approve_and_reject_record_the_reason_and_refuse_what_the_state_forbids(cli, registry):
    model = unique("cli-decide")
    register(registry, model, 2)

    approved = as_json(cli("models", "approve", model, "1", "--reason", "beats v0 on churn", "--json"))
    assert approved["status"] == "approved"
    rejected = cli("models", "reject", model, "2", "-r", "bias on segment B")
    assert rejected.exit_code == 0
    assert "rejected" in rejected.stdout

    history = as_json(cli("models", "history", model, "--json"))
    reasons = {(e["action"], e["version"]): e["reason"] for e in history["history"]}
    assert reasons[("status-approved", 1)] == "beats v0 on churn"
    assert reasons[("status-rejected", 2)] == "bias on segment B"

    again = cli("models", "approve", model, "2", "--reason", "changed my mind")
    assert again.exit_code == 4
    assert "rejected" in again.stderr

    no_reason = cli("models", "reject", model, "1")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.stderr


def test_unknown_model_is_exit_3_naming_it(cli):
    for args in (("models", "versions", "no-such-model"), ("models", "show", "no-such-model", "1")):
        result = cli(*args)
        assert result.exit_code == 3, result.output
        assert "no-such-model" in result.stderr
        assert "models list" in result.stderr  # what to do next

    scripted = cli("models", "history", "no-such-model", "--json")
    assert scripted.exit_code == 3
    assert scripted.stdout == ""
    error = error_json(scripted)
    assert error["error"] == "NotFound" and "no-such-model" in error["message"] and error["exit_code"] == 3


def test_bad_names_and_versions_are_exit_2(cli):
    bad_name = cli("models", "versions", "Not_A_Name")
    assert bad_name.exit_code == 2
    assert "model" in bad_name.stderr
    bad_version = cli("models", "show", "m", "zero")
    assert bad_version.exit_code == 2
    assert "not a version number" in bad_version.stderr


def test_history_says_what_served_production_at_a_time(cli, registry):
    model = unique("cli-at")
    register(registry, model, 2)
    start = datetime.now(UTC) - timedelta(hours=1)
    registry.set_alias(model, Alias.PRODUCTION, 1, actor="t", reason="first", now=start)
    registry.set_alias(model, Alias.PRODUCTION, 2, actor="t", reason="second", now=start + timedelta(minutes=30))

    def production_at(when: str) -> object:
        return as_json(cli("models", "history", model, "--at", when, "--json"))["production_at"]["version"]

    assert production_at((start - timedelta(minutes=1)).isoformat()) is None
    assert production_at((start + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")) == 1
    assert production_at("10m ago") == 2
    assert production_at("now") == 2

    human = cli("models", "history", model, "--at", (start + timedelta(minutes=10)).isoformat())
    assert human.exit_code == 0
    assert f"production of {model} was v1" in human.stdout

    bad = cli("models", "history", model, "--at", "yesterday-ish")
    assert bad.exit_code == 2
    assert "not a time" in bad.stderr


# -- training runs ----------------------------------------------------------------------------------


def test_invalid_hyperparameter_is_exit_2_naming_the_field(cli, endpoints):
    uri = f"s3://{endpoints['data_bucket']}/datasets/cli-hp/v1/data.csv"
    result = cli("runs", "start", uri, "--epochs", "0")
    assert result.exit_code == 2
    assert "hyperparameters.epochs" in result.stderr

    scripted = cli("runs", "start", uri, "--learning-rate", "99", "--json")
    assert scripted.exit_code == 2
    assert error_json(scripted)["field"] == "hyperparameters.learning_rate"

    gate = cli("runs", "start", uri, "--gate-metric", "f1")
    assert gate.exit_code == 2
    assert "--gate-metric" in gate.stderr


def test_a_run_started_from_the_cli_can_be_listed_followed_shown_and_read_as_a_timeline(cli, endpoints, aws):
    model = unique("cli-run")
    key = f"datasets/{model}/v1/data.csv"
    aws("s3").put_object(Bucket=endpoints["data_bucket"], Key=key, Body=b"a,b\n" + b"1,2\n" * 20)
    uri = f"s3://{endpoints['data_bucket']}/{key}"

    started = as_json(cli("runs", "start", uri, "--epochs", "3", "--gate-threshold", "0.5", "--json"))
    assert started["outcome"] == "started"
    assert started["model_name"] == model and started["dataset_uri"] == uri
    assert started["run_id"].startswith(f"{model}-v1-") and started["execution_arn"].endswith(started["run_id"])
    run_id = started["run_id"]

    followed = cli("runs", "follow", run_id, "--interval", "0.5", "--timeout", "120", "--json")
    assert followed.exit_code == 1, followed.output  # the dataset has no label column: the run fails
    run = json.loads(followed.stdout)
    assert run["status"] == "FAILED" and "label" in run["cause"]
    assert run["execution"]["status"] == "FAILED"

    human = cli("runs", "follow", run_id, "--interval", "0.5")
    assert human.exit_code == 1
    assert "ValidateDataset" in human.stdout and "label" in human.stdout

    shown = as_json(cli("runs", "show", run_id, "--json"))
    assert shown["request"]["hyperparameters"]["epochs"] == 3
    assert shown["request"]["gate"] == {"metric": "val_accuracy", "threshold": 0.5}

    listed = as_json(cli("runs", "list", "--model", model, "--json"))
    assert run_id in {r["run_id"] for r in listed}
    assert all(r["model_name"] == model for r in listed)

    timeline = as_json(cli("runs", "timeline", run_id, "--json"))
    steps = timeline["steps"]
    assert steps[0]["state"] == "ValidateDataset" and steps[0]["event"] == "entered"
    assert any(s["state"] == "ValidateDataset" and s["event"] == "failed" and "label" in s["detail"] for s in steps)
    assert steps[-1]["event"] == "failed" and steps[-1]["state"] == ""
    assert all(s["at"] and s["elapsed_seconds"] >= 0 for s in steps)
    table = cli("runs", "timeline", run_id)
    assert table.exit_code == 0 and "ValidateDataset" in table.stdout

    duplicate = as_json(cli("runs", "start", uri, "--epochs", "3", "--gate-threshold", "0.5", "--json"))
    assert duplicate == {**started, "outcome": "duplicate"}


def test_unknown_run_is_exit_3(cli):
    for command in ("show", "follow", "timeline"):
        result = cli("runs", command, "no-such-run")
        assert result.exit_code == 3, (command, result.output)
        assert "no-such-run" in result.stderr


# -- deployments ------------------------------------------------------------------------------------


def record_deployment(endpoints, name: str, model: str, phase: Phase) -> None:
    """A deployment's recorded state, as the rollout loop leaves it (no model servers needed)."""
    store = DynamoDbDeployments(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )
    spec = RolloutSpec(deployment=name, model=model, version=2, previous_version=1)
    status = replace(
        start_rollout(spec, datetime.now(UTC)),
        phase=phase,
        active_version=2 if phase is Phase.COMPLETED else 1,
        stable_version=2 if phase is Phase.COMPLETED else 1,
        reason="" if phase is Phase.COMPLETED else "error-ratio=0.4 (needs < 0.05)",
    )
    store.put(DeploymentRecord(spec, status), expected_revision=None)


def test_deploy_refuses_an_unapproved_version_and_needs_a_model_for_a_new_deployment(cli, registry):
    model = unique("cli-deploy")
    register(registry, model, 1)
    deployment = unique("api")

    unapproved = cli("deployments", "deploy", deployment, "--model", model, "--version", "1")
    assert unapproved.exit_code == 4
    assert "approve" in unapproved.stderr

    no_model = cli("deployments", "deploy", deployment, "--version", "1")
    assert no_model.exit_code == 2
    assert "--model" in no_model.stderr

    unknown = cli("deployments", "deploy", deployment, "--model", "no-such-model", "--version", "1", "--json")
    assert unknown.exit_code == 3
    error = error_json(unknown)
    assert "no-such-model" in error["message"] and "python -m control models" in error["hint"]


def test_watch_and_history_of_a_deployment(cli, registry, endpoints):
    model = unique("cli-watch")
    register(registry, model, 2)
    good, bad = unique("good"), unique("bad")
    record_deployment(endpoints, good, model, Phase.COMPLETED)
    record_deployment(endpoints, bad, model, Phase.ROLLED_BACK)
    registry.set_alias(
        model,
        Alias.PRODUCTION,
        2,
        actor="rollout",
        reason="promoted",
        now=datetime.now(UTC),
        details={"deployment": good},
    )
    registry.set_status(model, 1, VersionStatus.APPROVED, actor="t", reason="ok", now=datetime.now(UTC))

    assert {good, bad} <= set(as_json(cli("deployments", "list", "--json")))

    completed = cli("deployments", "watch", good, "--interval", "0.1")
    assert completed.exit_code == 0, completed.output
    assert "COMPLETED" in completed.stdout

    rolled_back = cli("deployments", "watch", bad, "--interval", "0.1", "--json")
    assert rolled_back.exit_code == 1

    stuck = unique("stuck")  # a record in progress that no loop steps: the watch runs out of time
    record_deployment(endpoints, stuck, model, Phase.PRE_PROMOTION_ANALYSIS)
    timed_out = cli("deployments", "watch", stuck, "--interval", "0.1", "--timeout", "0.3", "--json")
    assert timed_out.exit_code == 7
    assert json.loads(timed_out.stdout)["status"]["phase"] == "PRE_PROMOTION_ANALYSIS"  # the last state seen
    assert f"watch it again with `python -m control deployments watch {stuck}`" in error_json(timed_out)["hint"]
    body = json.loads(rolled_back.stdout)
    assert body["status"]["phase"] == "ROLLED_BACK" and body["status"]["active_version"] == 1

    shown = as_json(cli("deployments", "show", bad, "--json"))
    assert shown["deployment"] == bad and shown["model"] == model
    human = cli("deployments", "show", bad)
    assert "ROLLED_BACK" in human.stdout and "error-ratio" in human.stdout

    history = as_json(cli("deployments", "history", good, "--at", "now", "--json"))
    assert history["deployment"] == good and history["model"] == model
    assert [e["action"] for e in history["history"]] == ["alias-set"]
    assert history["production_at"]["version"] == 2

    again = cli("deployments", "rollback", bad, "--reason", "still bad")
    assert again.exit_code == 4  # already rolled back: nothing to roll back to
    assert bad in again.stderr or "roll" in again.stderr


def test_a_canary_shows_its_weight_and_step_and_only_a_canary_can_be_aborted(cli, registry, endpoints):
    model = unique("cli-canary")
    register(registry, model, 2)
    canary, blue_green = unique("canary"), unique("bg")
    store = DynamoDbDeployments(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )
    strategy = parse_strategy({"type": "canary", "weights": "10,50,100", "step_pause": "30s"})
    spec = RolloutSpec(deployment=canary, model=model, version=2, previous_version=1, strategy=strategy)
    now = datetime.now(UTC)
    status = replace(start_rollout(spec, now), phase=Phase.CANARY, canary_step=1, canary_weight=10, step_started_at=now)
    store.put(DeploymentRecord(spec, status), expected_revision=None)
    record_deployment(endpoints, blue_green, model, Phase.PRE_PROMOTION_ANALYSIS)

    shown = as_json(cli("deployments", "show", canary, "--json"))
    progress = shown["canary"]
    assert progress["weight"] == 10 and progress["step"] == 2 and progress["current"] == "pause 30s"
    assert 0 < shown["canary"]["next_step_in_seconds"] <= 30
    human = cli("deployments", "show", canary)
    assert "canary weight" in human.stdout and "10%" in human.stdout and "pause 30s" in human.stdout

    not_a_canary = cli("deployments", "abort", blue_green, "--reason", "stop", "--json")
    assert not_a_canary.exit_code == 4 and "no canary in progress" in error_json(not_a_canary)["message"]

    bad = cli("deployments", "deploy", canary, "--model", model, "--version", "2", "--canary", "50,10", "--json")
    assert bad.exit_code == 2 and error_json(bad)["field"] == "strategy.weights"
    pause = cli("deployments", "strategy", canary, "--canary", "10,100", "--step-pause", "13h", "--json")
    assert pause.exit_code == 2 and error_json(pause)["field"] == "strategy.step_pause"

    chosen = as_json(cli("deployments", "strategy", blue_green, "--canary", "20,100", "--step-pause", "1m", "--json"))
    assert chosen["strategy"]["steps"] == [{"setWeight": 20}, {"pause": "60s"}, {"analysis": {}}, {"setWeight": 100}]
    assert as_json(cli("deployments", "show", blue_green, "--json"))["strategy"]["type"] == "canary"
    assert as_json(cli("deployments", "strategy", blue_green, "--blue-green", "--json"))["strategy"] == {
        "type": "blueGreen"
    }


def test_unknown_deployment_is_exit_3_and_rollback_needs_a_reason(cli):
    for args in (
        ("deployments", "show", "no-such-deployment"),
        ("deployments", "watch", "no-such-deployment"),
        ("deployments", "history", "no-such-deployment"),
        ("deployments", "rollback", "no-such-deployment", "--reason", "bad"),
    ):
        result = cli(*args)
        assert result.exit_code == 3, (args, result.output)
        assert "no-such-deployment" in result.stderr
        assert "deployments list" in result.stderr
    no_reason = cli("deployments", "rollback", "whatever")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.stderr


# -- settings and reachability ---------------------------------------------------------------------


def test_unreachable_api_is_exit_5_with_the_hint(cli):
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("models", "list", env={"MLCP_ENDPOINTS": "", "MLCP_API_URL": url, "MLCP_API_TOKEN": "x"})
    assert result.exit_code == 5
    assert f"cannot reach the API at {url}" in result.stderr
    assert "is `python -m control up` running?" in result.stderr


def test_missing_settings_say_how_to_provide_them(cli, tmp_path):
    nothing = cli("models", "list", env={"MLCP_ENDPOINTS": ""})
    assert nothing.exit_code == 2
    assert "--endpoints" in nothing.stderr and "MLCP_API_URL" in nothing.stderr

    missing = cli("runs", "list", "--endpoints", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "python -m control up --endpoints-file" in missing.stderr


def test_a_wrong_token_is_exit_6(cli, endpoints, tmp_path):
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({**endpoints, "api_token": "from-an-earlier-up"}))
    result = cli("models", "list", "--endpoints", str(stale))
    assert result.exit_code == 6
    assert "token" in result.stderr
