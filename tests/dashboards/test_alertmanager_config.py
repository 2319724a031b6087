"""The Alertmanager configuration: amtool accepts the AWS file and the local rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dashboards.alertmanager import CONFIG_PATH, SNS_TEMPLATE_PATH, load_config, render_local_config
from tests.dashboards.conftest import DASHBOARDS, require_binary, run_tool


def test_amtool_accepts_the_aws_config() -> None:
    amtool = require_binary("amtool")
    result = run_tool(amtool, "check-config", CONFIG_PATH)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_local_config(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    token = tmp_path / "alert-token"
    token.write_text("local-secret\n")
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_local_config("http://127.0.0.1:8123/alerts/alertmanager", token))
    result = run_tool(amtool, "check-config", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_aws_config_delivers_deployment_alerts_to_the_webhook_with_a_token_file_and_everything_to_sns() -> None:
    config = load_config()
    receivers = {r["name"]: r for r in config["receivers"]}
    webhook = receivers["control-plane-webhook"]["webhook_configs"][0]
    assert webhook["url"].endswith("/alerts/alertmanager")
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["credentials_file"]
    assert any("sns_configs" in r for r in receivers.values())
    for receiver in receivers.values():
        for sns in receiver.get("sns_configs", []):
            assert sns["message"] == '{{ template "sns.json" . }}'
    deployment_route = config["route"]["routes"][0]
    assert deployment_route["receiver"] == "control-plane-webhook"
    assert deployment_route["continue"] is True
    assert {"deployment", "version"} <= set(deployment_route["group_by"])


def test_local_config_keeps_routes_and_inhibitions_but_only_reaches_the_local_api(tmp_path: Path) -> None:
    text = render_local_config("http://127.0.0.1:8123/alerts/alertmanager", tmp_path / "token")
    config = yaml.safe_load(text)
    aws = load_config()
    assert config["inhibit_rules"] == aws["inhibit_rules"]
    assert [r["receiver"] for r in config["route"]["routes"]] == [r["receiver"] for r in aws["route"]["routes"]]
    webhook = next(r for r in config["receivers"] if r["name"] == "control-plane-webhook")["webhook_configs"][0]
    assert webhook["url"] == "http://127.0.0.1:8123/alerts/alertmanager"
    assert webhook["http_config"]["authorization"]["credentials_file"] == str(tmp_path / "token")
    assert not any("sns_configs" in r for r in config["receivers"])

    def waits(route: dict) -> list[str]:
        return [route["group_wait"]] + [w for child in route.get("routes", []) for w in waits(child)]

    assert set(waits(config["route"])) == {"1s"}


def test_sns_message_template_renders_the_v4_json_the_sns_handler_parses() -> None:
    amtool = require_binary("amtool")
    result = run_tool(
        amtool,
        "template",
        "render",
        f"--template.glob={SNS_TEMPLATE_PATH}",
        '--template.text={{ template "sns.json" . }}',
    )
    assert result.returncode == 0, result.stderr
    # amtool's sample data has the placeholder status "alertstatus"; a real notification says firing.
    message = result.stdout.strip().replace('"alertstatus"', '"firing"')
    payload = json.loads(message)
    assert payload["version"] == "4" and payload["alerts"][0]["fingerprint"]
    alerts = pytest.importorskip("control.domain.alerts")
    parsed = alerts.parse_sns_message(message)
    assert len(parsed.alerts) == len(payload["alerts"])


def test_sns_template_escapes_quotes_and_backslashes() -> None:
    amtool = require_binary("amtool")
    result = run_tool(
        amtool,
        "template",
        "render",
        f"--template.glob={SNS_TEMPLATE_PATH}",
        '--template.text={{ template "mlcp.sns.json_string" "say \\"hi\\" \\\\ bye" }}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip()) == 'say "hi" \\ bye'


def test_template_is_next_to_the_config() -> None:
    assert load_config()["templates"] == [SNS_TEMPLATE_PATH.name]
    assert (DASHBOARDS / SNS_TEMPLATE_PATH.name).is_file()
