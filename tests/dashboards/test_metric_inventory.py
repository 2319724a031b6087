"""Every metric a rule or dashboard reads is in dashboards/metric_inventory.yml with where it comes
from, and on EKS that source is deployed by terraform/addons with the settings it needs: the values
each Helm release receives are evaluated by the real terraform binary (tests/support/addons_values.py).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import hcl2
import pytest
import yaml

from dashboards.promql import metric_names
from tests.support.addons_values import PLATFORM_OUTPUTS, REGION, release_values, releases
from tests.support.promql import expressions, recorded, used_metrics
from tests.support.tools import DASHBOARDS as DASHBOARDS_DIR
from tests.support.tools import REPO

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
INVENTORY = DASHBOARDS_DIR / "metric_inventory.yml"
IAM = REPO / "terraform" / "envs" / "example" / "iam.tf"


@functools.cache
def inventory() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(INVENTORY.read_text())
    return document


def metrics_of(source: str) -> dict[str, dict[str, Any]]:
    return {name: entry for name, entry in inventory()["metrics"].items() if entry["source"] == source}


def contract_metrics() -> set[str]:
    text = (REPO / "docs" / "contracts.md").read_text()
    names = set(re.findall(r"`(mlcp_[a-z0-9_]+)", text))
    return names | {name + suffix for name in names for suffix in HISTOGRAM_SUFFIXES}


# --- the inventory against the rules and dashboards ----------------------------------------------


def test_every_used_metric_is_in_the_inventory() -> None:
    listed = set(inventory()["metrics"])
    missing = {name: sorted(where) for name, where in used_metrics().items() if name not in listed}
    assert missing == {}, f"add these to {INVENTORY.relative_to(REPO)} with their source"


def test_the_inventory_lists_nothing_that_nothing_uses() -> None:
    assert set(inventory()["metrics"]) - set(used_metrics()) == set()


def test_every_metric_names_a_known_source_and_where_it_runs_locally() -> None:
    sources = inventory()["sources"]
    for name, entry in inventory()["metrics"].items():
        assert entry["source"] in sources, f"{name}: unknown source {entry['source']!r}"
    for name, source in sources.items():
        assert source["description"] and source["local"], name


def test_our_own_metrics_are_in_the_contract_and_recorded_ones_in_the_rules() -> None:
    ours = set(metrics_of("model-server")) | set(metrics_of("training-rank0"))
    assert ours - contract_metrics() == set(), "docs/contracts.md must list the workload metrics"
    assert set(metrics_of("recording-rule")) == recorded() & set(used_metrics())
    exporters = set(inventory()["metrics"]) - ours - set(metrics_of("recording-rule"))
    assert exporters & (contract_metrics() | recorded()) == set(), "an exporter metric shadows one of ours"


def test_every_metric_used_has_a_source_that_deploys_it() -> None:
    gaps = metrics_of("none")
    assert set(gaps) == set(), f"metrics used that nothing deploys: {sorted(gaps)}"


# --- every source is deployed by terraform/addons with its settings ------------------------------


def _at(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return KeyError(dotted)
        node = node[key]
    return node


def test_every_source_is_a_release_the_addons_deploy_with_the_settings_it_needs() -> None:
    deployed = releases()
    values = release_values()
    for name, source in inventory()["sources"].items():
        if name == "none":
            continue
        release = source["eks"]["release"]
        assert release in deployed, f"source {name}: terraform/addons has no helm_release {release!r}"
        for path, wanted in (source["eks"].get("settings") or {}).items():
            assert _at(values.get(release, {}), path) == wanted, f"{release} must set {path}: {wanted!r}"


def _ksm_label(kubernetes_label: str) -> str:
    """kube-state-metrics' name for a Kubernetes label (internal/store/utils.go: SanitizeLabelName,
    then toSnakeCase)."""
    sanitized = re.sub(r"[^a-zA-Z0-9_]", "_", kubernetes_label)
    return "label_" + re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", sanitized).lower()


def _allowlist() -> dict[str, list[str]]:
    entries = release_values()["kube_prometheus_stack"]["kube-state-metrics"]["metricLabelsAllowlist"]
    allowed: dict[str, list[str]] = {}
    for entry in entries:
        match = re.fullmatch(r"([a-z]+)=\[([^\]]*)\]", entry)
        assert match, f"not a kube-state-metrics allowlist entry: {entry!r}"
        allowed[match.group(1)] = match.group(2).split(",")
    return allowed


@pytest.mark.parametrize(("metric", "resource"), [("kube_pod_labels", "pods"), ("kube_node_labels", "nodes")])
def test_kube_state_metrics_exports_every_label_the_rules_read(metric: str, resource: str) -> None:
    allowed = {_ksm_label(label) for label in _allowlist().get(resource, [])}
    read = {
        label
        for where, expr in expressions()
        if metric in metric_names(expr)
        for label in re.findall(r"\blabel_[a-z0-9_]+", expr)
        if label not in {"label_replace", "label_join", "label_values"}
    }
    assert read, f"no rule reads {metric}"
    assert read - allowed == set(), f"add to kube-state-metrics.metricLabelsAllowlist {resource}=[...]"
    listed = {_ksm_label(label) for label in inventory()["metrics"][metric]["labels"]}
    assert listed == read, f"{INVENTORY.name} lists other {metric} labels than the rules read"


def test_dcgm_series_keep_the_labels_of_the_pod_holding_the_gpu() -> None:
    monitor = release_values()["dcgm_exporter"]["serviceMonitor"]
    assert monitor["honorLabels"] is True, "without it the pod and namespace become exported_pod/exported_namespace"
    dropped = [r["regex"] for r in monitor["relabelings"] if r["action"] == "labeldrop"]
    for label in ("namespace", "pod", "container"):
        assert any(re.fullmatch(regex, label) for regex in dropped), f"the exporter pod's own {label} is kept"
    read = {
        label
        for _, expr in expressions()
        if metric_names(expr) & set(metrics_of("dcgm-exporter"))
        for label in re.findall(r"\b(namespace|pod|container)\b", expr)
    }
    assert read <= {"namespace", "pod", "container"} and {"namespace", "pod"} <= read


# --- the CloudWatch exporter ---------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _cloudwatch_names(config: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name -> label names, as prometheus/cloudwatch_exporter v0.16.0 (the chart's
    appVersion) names them (CloudWatchCollector: safeName(namespace.toLowerCase() + "_" +
    toSnakeCase(metric)) + "_" + toSnakeCase(statistic); dimensions through toSnakeCase)."""

    def safe(name: str) -> str:
        return re.sub(r"__+", "_", re.sub(r"[^a-zA-Z0-9:_]", "_", name))

    produced: dict[str, set[str]] = {}
    for rule in config["metrics"]:
        base = safe(rule["aws_namespace"].lower() + "_" + _snake(rule["aws_metric_name"]))
        statistics = rule.get("aws_statistics", []) + rule.get("aws_extended_statistics", [])
        for statistic in statistics:
            labels = {"job", "instance"} | {safe(_snake(d)) for d in rule.get("aws_dimensions", [])}
            produced[base + "_" + safe(_snake(statistic))] = labels
    return produced


def _exporter_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(release_values()["cloudwatch_exporter"]["config"])
    return config


def test_the_cloudwatch_exporter_produces_every_cloudwatch_metric_with_the_labels_queried() -> None:
    config = _exporter_config()
    assert config["region"] == REGION
    produced = _cloudwatch_names(config)
    wanted = set(metrics_of("cloudwatch-exporter"))
    assert wanted - set(produced) == set(), "dashboards/cloudwatch_exporter.yml does not produce these"
    assert set(produced) - wanted == set(), "dashboards/cloudwatch_exporter.yml asks CloudWatch for unused metrics"
    for where, expr in expressions():
        for metric in metric_names(expr) & wanted:
            selected = set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"", expr))
            selected |= {
                label.strip()
                for group in re.findall(r"\bby\s*\(([^)]*)\)", expr)
                for label in group.split(",")
                if label.strip()
            }
            assert selected - produced[metric] == set(), f"{where}: {metric} has no {selected - produced[metric]}"


def test_the_cloudwatch_exporter_reads_only_the_platform_file_system() -> None:
    efs = next(r for r in _exporter_config()["metrics"] if r["aws_namespace"] == "AWS/EFS")
    assert efs["aws_dimension_select"] == {"FileSystemId": [PLATFORM_OUTPUTS["checkpoints"]["file_system_id"]]}


def test_the_cloudwatch_exporter_role_grants_what_its_config_calls_and_nothing_more() -> None:
    def unq(value: str) -> str:
        return value[1:-1] if value[:1] == value[-1:] == '"' else value

    doc = hcl2.load(IAM.open())
    role = next(block["irsa"] for block in doc["locals"] if "irsa" in block)["cloudwatch_exporter"]
    release = releases()["cloudwatch_exporter"]
    account = release_values()["cloudwatch_exporter"]["serviceAccount"]
    assert (unq(role["namespace"]), unq(role["service_account"])) == (unq(release["namespace"]), account["name"])
    assert (
        account["annotations"]["eks.amazonaws.com/role-arn"]
        == PLATFORM_OUTPUTS["irsa_role_arns"]["cloudwatch_exporter"]
    )
    granted = {unq(a) for statement in role["statements"] for a in statement["Action"]}
    config = _exporter_config()
    needed = {"cloudwatch:GetMetricData" if config.get("use_get_metric_data") else "cloudwatch:GetMetricStatistics"}
    if any("aws_dimensions" in r for r in config["metrics"]):
        needed.add("cloudwatch:ListMetrics")
    if any("aws_tag_select" in r for r in config["metrics"]):
        needed.add("tag:GetResources")
    assert granted == needed
