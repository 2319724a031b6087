"""The Alertmanager configuration: one template, the AWS rendering (terraform/addons) and the local
one differ only in the named parameters; amtool accepts both; the SNS message is the v4 JSON."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.alertmanager import (
    CONFIG_PATH,
    CONTROL_PLANE_RECEIVER,
    PARAMETERS,
    SNS_TEMPLATE_PATH,
    load_config,
    local_parameters,
    placeholders,
    render_config,
)
from tests.support.alertmanager import ADDONS, addons_locals, addons_parameters
from tests.support.tools import require_binary, run_tool

LOCAL = local_parameters(
    alerts_topic_arn="arn:aws:sns:us-east-1:123456789012:mlcp-local-alerts",
    region="us-east-1",
    sns_api_url="http://127.0.0.1:5000",
)


def terraform_render(parameters: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """The config as Terraform's own templatefile + yamldecode produce it (what the addons pass to
    kube-prometheus-stack), through the real terraform binary (`terraform console`, offline)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.fail("terraform is not on PATH (scripts/setup.sh installs it)")
    arguments = ", ".join(f"{name} = {json.dumps(value)}" for name, value in parameters.items())
    expression = f"jsonencode(yamldecode(templatefile({json.dumps(str(CONFIG_PATH))}, {{ {arguments} }})))\n"
    result = subprocess.run(
        [terraform, "console"], input=expression, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(json.loads(result.stdout.strip().splitlines()[-1]))
    return rendered


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Paths where two parsed configs differ (structure or leaf values)."""
    if isinstance(left, dict) and isinstance(right, dict):
        keys = set(left) | set(right)
        return [d for k in sorted(keys) for d in differences(left.get(k), right.get(k), f"{path}.{k}")]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [d for i, (a, b) in enumerate(zip(left, right, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if left == right else [path]


def parameter_paths() -> set[str]:
    """Where in the config the template's parameters land (each filled with a distinct marker)."""
    marked = load_config({name: f"<<{name}>>" for name in PARAMETERS})
    blank = load_config({name: "" for name in PARAMETERS})
    return set(differences(marked, blank))


def test_the_template_has_exactly_the_named_parameters() -> None:
    assert placeholders() == set(PARAMETERS)
    assert "%{" not in CONFIG_PATH.read_text()
    with pytest.raises(ValueError, match="missing"):
        render_config({k: v for k, v in LOCAL.items() if k != "region"})
    with pytest.raises(ValueError, match="quotes"):
        render_config(LOCAL | {"region": "us-east-1' injected: 'x"})


def test_addons_fill_the_template_from_the_dashboards_folder_with_every_parameter() -> None:
    local = addons_locals()
    assert set(addons_parameters()) == set(PARAMETERS)
    assert local["alertmanager_source"] == '"${path.module}/../../dashboards"'
    assert local["alertmanager_config"] == (
        '${yamldecode(templatefile("${local.alertmanager_source}/alertmanager.yml", local.alertmanager_parameters))}'
    )
    assert local["alertmanager_template_files"] == {
        f'"{SNS_TEMPLATE_PATH.name}"': f'${{file("${{local.alertmanager_source}}/{SNS_TEMPLATE_PATH.name}")}}'
    }
    # kube-prometheus-stack mounts templateFiles under /etc/alertmanager/config/
    assert addons_parameters()["template_files"] == "/etc/alertmanager/config/*.tmpl"
    text = ADDONS.read_text()
    assert re.search(r"\bconfig\s*=\s*local\.alertmanager_config\b", text)
    assert re.search(r"\btemplateFiles\s*=\s*local\.alertmanager_template_files\b", text)


def test_terraform_renders_the_template_exactly_as_python_does(tmp_path: Path) -> None:
    parameters = addons_parameters()
    assert terraform_render(parameters, tmp_path) == load_config(parameters)


def test_aws_and_local_renderings_differ_only_in_the_named_parameters() -> None:
    aws, local = load_config(addons_parameters()), load_config(LOCAL)
    differing = set(differences(aws, local))
    assert differing, "the parameters should differ somewhere"
    assert differing <= parameter_paths(), f"differ outside the named parameters: {differing - parameter_paths()}"


def test_every_alert_reaches_the_sns_topic_with_the_v4_json_message() -> None:
    for parameters in (addons_parameters(), LOCAL):
        config = load_config(parameters)
        for receiver in config["receivers"]:
            assert set(receiver) == {"name", "sns_configs"}, "SNS only: the API is IAM-only on AWS"
            for sns in receiver["sns_configs"]:
                assert sns["topic_arn"] == parameters["alerts_topic_arn"]
                assert sns["api_url"] == parameters["sns_api_url"]
                assert sns["message"] == '{{ template "sns.json" . }}'
                assert sns["send_resolved"] is True
        deployment_route = config["route"]["routes"][0]
        assert deployment_route["receiver"] == CONTROL_PLANE_RECEIVER
        assert deployment_route["continue"] is True
        assert {"deployment", "version"} <= set(deployment_route["group_by"])
    assert addons_parameters()["sns_api_url"] == ""  # the region's endpoint on AWS


@pytest.mark.parametrize("rendering", ["aws", "local"])
def test_amtool_accepts_both_renderings(rendering: str, tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    parameters = addons_parameters() if rendering == "aws" else LOCAL
    if rendering == "aws":  # the mount point kube-prometheus-stack uses, here a copy of the template
        (tmp_path / "config").mkdir()
        shutil.copy(SNS_TEMPLATE_PATH, tmp_path / "config" / SNS_TEMPLATE_PATH.name)
        parameters = parameters | {"template_files": str(tmp_path / "config" / "*.tmpl")}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(load_config(parameters)))
    result = run_tool(amtool, "check-config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


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
    from control.domain.alert_payload import parse_sns_message

    parsed = parse_sns_message(message)
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
