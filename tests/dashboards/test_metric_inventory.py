"""Every metric a rule or dashboard reads is exported by our code (docs/contracts.md), by a listed
exporter (dashboards/exporter_metrics.yml), or is one of our recording rules."""

from __future__ import annotations

import re

import yaml

from dashboards.generate import DASHBOARDS
from dashboards.promql import metric_names
from dashboards.rules import load_rules
from tests.dashboards.conftest import DASHBOARDS as DASHBOARDS_DIR
from tests.dashboards.conftest import REPO

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def contract_metrics() -> set[str]:
    text = (REPO / "docs" / "contracts.md").read_text()
    names = set(re.findall(r"`(mlcp_[a-z0-9_]+)", text))
    return names | {name + suffix for name in names for suffix in HISTOGRAM_SUFFIXES}


def exporter_metrics() -> dict[str, str]:
    document = yaml.safe_load((DASHBOARDS_DIR / "exporter_metrics.yml").read_text())
    return {metric: source for source, entry in document["sources"].items() for metric in entry["metrics"]}


def recorded() -> set[str]:
    return {rule["record"] for group in load_rules() for rule in group["rules"] if "record" in rule}


def used_metrics() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for group in load_rules():
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                used.setdefault(name, set()).add(f"rule {rule.get('alert') or rule.get('record')}")
    for name, build in DASHBOARDS.items():
        dashboard = build()
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
        # label_values(<selector>, <label>): the selector names the metric.
        exprs += [
            v["query"].removeprefix("label_values(").rsplit(",", 1)[0]
            for v in dashboard["templating"]["list"]
            if v["type"] == "query"
        ]
        for expr in exprs:
            for metric in metric_names(expr):
                used.setdefault(metric, set()).add(f"dashboard {name}")
    return used


def test_contract_lists_the_workload_metrics() -> None:
    assert {"mlcp_inference_requests_total", "mlcp_training_loss"} <= contract_metrics()


def test_every_used_metric_has_a_known_source() -> None:
    known = contract_metrics() | set(exporter_metrics()) | recorded()
    unknown = {name: sorted(where) for name, where in used_metrics().items() if name not in known}
    assert unknown == {}, "add these to docs/contracts.md or dashboards/exporter_metrics.yml"


def test_exporter_list_has_no_metric_that_nothing_uses() -> None:
    assert set(exporter_metrics()) - set(used_metrics()) == set()


def test_exporter_entries_name_their_status() -> None:
    document = yaml.safe_load((DASHBOARDS_DIR / "exporter_metrics.yml").read_text())
    for source, entry in document["sources"].items():
        assert entry["description"], source
        for metric, details in entry["metrics"].items():
            assert details["status"] in {"present", "configured", "proposed"}, metric
            if details["status"] == "proposed":
                assert details.get("note"), metric


def test_no_recording_rule_shadows_an_exported_metric() -> None:
    assert recorded() & (contract_metrics() | set(exporter_metrics())) == set()
