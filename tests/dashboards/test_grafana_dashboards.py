"""The generated Grafana dashboards: up to date, valid against Grafana's schema, every query parses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards.generate import DASHBOARDS, GRAFANA_DIR, rendered_files
from dashboards.promql import substitute_grafana_variables
from tests.support.tools import DASHBOARDS as DASHBOARDS_DIR
from tests.support.tools import require_binary, run_tool

SCHEMA = json.loads((DASHBOARDS_DIR / "schema" / "dashboard.schema.json").read_text())


def committed() -> dict[str, dict[str, Any]]:
    return {name: json.loads((GRAFANA_DIR / f"{name}.json").read_text()) for name in DASHBOARDS}


def panel_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    return exprs


def test_committed_files_are_what_the_generator_writes() -> None:
    stale = [str(path) for path, text in rendered_files().items() if not path.exists() or path.read_text() != text]
    assert stale == [], "run `.venv/bin/python -m dashboards.generate` and commit the result"


def test_no_stray_dashboard_files() -> None:
    assert {p.stem for p in GRAFANA_DIR.glob("*.json")} == set(DASHBOARDS)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_validates_against_the_grafana_schema(name: str) -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(committed()[name]), key=str)
    assert errors == [], "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_schema_rejects_what_grafana_would_not_load() -> None:
    broken = json.loads(json.dumps(committed()["inference"]))
    broken["panels"][1]["gridPos"] = {"h": "tall"}
    del broken["schemaVersion"]
    assert len(list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))) >= 2


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_template_variables_units_and_unique_panel_ids(name: str) -> None:
    dashboard = committed()[name]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] in ("timeseries", "stat"):
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
            assert [t["refId"] for t in panel["targets"]] == [chr(ord("A") + i) for i in range(len(panel["targets"]))]


def test_inference_dashboard_has_the_deployment_variables_and_rollout_annotations() -> None:
    dashboard = committed()["inference"]
    assert {"datasource", "namespace", "deployment", "model"} <= {v["name"] for v in dashboard["templating"]["list"]}
    names = {a["name"] for a in dashboard["annotations"]["list"]}
    assert {"Version started", "Traffic switched (promotion or rollback)", "Rollback-triggering alert"} <= names


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = []
    for name, dashboard in committed().items():
        for number, expr in enumerate(panel_queries(dashboard)):
            rules.append(
                {"record": f"dashboard:{name.replace('-', '_')}:{number}", "expr": substitute_grafana_variables(expr)}
            )
    assert len(rules) > 40
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    result = run_tool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_variable_queries_parse(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = []
    for dashboard in committed().values():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                selector = variable["query"].removeprefix("label_values(").rsplit(",", 1)[0]
                rules.append(
                    {
                        "record": f"variable:{variable['name']}:{len(rules)}",
                        "expr": substitute_grafana_variables(selector),
                    }
                )
    path = tmp_path / "variable-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "variable-queries", "rules": rules}]}))
    result = run_tool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
