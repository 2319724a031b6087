"""The functions' own CloudWatch counts reach the dashboards: every `count(...)` call in functions/
emits (namespace, metric, dimensions) that dashboards/cloudwatch_exporter.yml asks CloudWatch for,
under the name the dashboards query (dashboards/metric_inventory.yml)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXPORTER = REPO / "dashboards" / "cloudwatch_exporter.yml"
INVENTORY = REPO / "dashboards" / "metric_inventory.yml"


def counted_in_functions() -> set[tuple[str, frozenset[str]]]:
    """(metric, dimensions) of every `count("Metric", dim=...)` call under functions/chalicelib."""
    found = set()
    for path in (REPO / "functions" / "chalicelib").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "count":
                metric = node.args[0]
                assert isinstance(metric, ast.Constant), f"{path.name}: count() takes a literal metric name"
                found.add((metric.value, frozenset(k.arg for k in node.keywords if k.arg) | {"service"}))
    return found


def exporter_rules() -> dict[tuple[str, frozenset[str]], str]:
    """(metric, dimensions) → the Prometheus name cloudwatch_exporter gives its Sum, for MLPlatform."""
    config = yaml.safe_load(re.sub(r"\$\{\w+\}", "x", EXPORTER.read_text()))
    rules = {}
    for rule in config["metrics"]:
        if rule["aws_namespace"] != "MLPlatform":
            continue
        snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", rule["aws_metric_name"]).lower()
        rules[(rule["aws_metric_name"], frozenset(rule["aws_dimensions"]))] = f"mlplatform_{snake}_sum"
    return rules


def test_every_count_the_functions_emit_is_read_by_the_exporter_and_nothing_else_is() -> None:
    counted = counted_in_functions()
    assert {m for m, _ in counted} >= {"ModelVersionRegistered", "Rollback"}
    assert counted == set(exporter_rules()), "functions' count() calls and cloudwatch_exporter.yml disagree"


def test_the_exported_names_are_the_ones_the_inventory_lists() -> None:
    inventory = yaml.safe_load(INVENTORY.read_text())["metrics"]
    for name in exporter_rules().values():
        assert inventory.get(name, {}).get("source") == "cloudwatch-exporter", name


def test_count_writes_one_embedded_metric_with_the_service_dimension(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import runtime

    monkeypatch.setattr(runtime, "SERVICE", "mlcp-prod")
    runtime.count("Rollback", deployment="churn-api")
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "MLPlatform"
    assert set(directive["Dimensions"][0]) == {"service", "deployment"}
    assert [m["Name"] for m in directive["Metrics"]] == ["Rollback"]
    assert (record["service"], record["deployment"], record["Rollback"]) == ("mlcp-prod", "churn-api", [1.0])
