"""The rule files: valid, unit-tested, labelled as the control plane expects, and the same in every runtime."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dashboards.rules import LOCAL_FOR, LOCAL_WINDOW, load_rules, render_rules, rule_files
from tests.support.tools import DASHBOARDS, require_binary, run_tool

DEPLOYMENT_LABELS = {"deployment", "model", "version"}
SEVERITIES = {"critical", "warning", "info"}


def alerts() -> list[dict]:
    return [rule for group in load_rules() for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_every_rule_file() -> None:
    promtool = require_binary("promtool")
    result = run_tool(promtool, "check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    tests = sorted((DASHBOARDS / "tests").glob("*_test.yml"))
    assert tests
    result = run_tool(promtool, "test", "rules", *tests, cwd=DASHBOARDS / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_one_case_and_stays_quiet_in_another() -> None:
    """Each alert has a check where it fires and one where it must not (exp_alerts: []).

    Firing checks list exactly the alerts expected, so the healthy series of the same case
    (another version, a busy deployment, a ready node...) are proven quiet as well.
    """
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in (DASHBOARDS / "tests").glob("*_test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts without a firing check"
    assert names - quiet == set(), "alerts without a quiet check"


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_annotations_and_a_runbook_section(rule: dict) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
    assert anchor == rule["alert"].lower()
    readme = (DASHBOARDS / "README.md").read_text()
    assert re.search(rf"^### {rule['alert']}$", readme, re.MULTILINE), f"no runbook section for {rule['alert']}"


def test_deployment_alerts_fire_with_deployment_model_and_version() -> None:
    """In the promtool cases, every firing alert of a deployment carries the labels the rollback reads."""
    deployment_alerts = {rule["alert"] for rule in alerts() if rule["alert"].startswith("MlcpInference")}
    checked = set()
    for path in (DASHBOARDS / "tests").glob("*_test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["alertname"] in deployment_alerts:
                    for alert in check.get("exp_alerts") or []:
                        assert DEPLOYMENT_LABELS | {"severity"} <= set(alert["exp_labels"]), check
                        checked.add(check["alertname"])
    assert checked == deployment_alerts


def test_local_rules_shorten_for_and_windows_and_still_parse(tmp_path: Path) -> None:
    groups = load_rules(local=True)
    assert len(groups) == len(load_rules())
    for group in groups:
        assert "interval" not in group
        for rule in group["rules"]:
            assert rule.get("for", LOCAL_FOR) in (LOCAL_FOR, "0s")
            assert "[1m]" not in rule["expr"]
    assert f"[{LOCAL_WINDOW}]" in render_rules(local=True)
    promtool = require_binary("promtool")
    path = tmp_path / "local.yml"
    path.write_text(render_rules(local=True))
    result = run_tool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_aws_rules_are_the_files_unchanged() -> None:
    on_disk = [group for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"]]
    assert load_rules() == on_disk
    assert yaml.safe_load(render_rules()) == {"groups": on_disk}


@pytest.mark.parametrize("alert", ["MlcpInferenceHighErrorRatio", "MlcpInferenceHighLatencyP99"])
def test_the_rollback_alerts_are_evaluated_right_after_the_series_they_read(alert: str) -> None:
    """In the same group and after the recording rules they read: one evaluation, in order, so a
    fault goes pending on the evaluation that first records it (no wait for another group's tick)."""
    for local in (False, True):
        for group in load_rules(local):
            names = [rule.get("record") or rule.get("alert") for rule in group["rules"]]
            if alert not in names:
                continue
            rule = group["rules"][names.index(alert)]
            read = set(re.findall(r"mlcp_deployment:[a-z0-9_:]+", rule["expr"]))
            assert read and read <= set(names[: names.index(alert)]), (group["name"], read)
            break
        else:
            raise AssertionError(f"{alert} not found")
