"""workloads/k8s/monitoring: valid against the prometheus-operator CRDs, and the rules cannot drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards.rules import load_rules
from tests.dashboards.conftest import CRDS, REPO

MONITORING = REPO / "workloads" / "k8s" / "monitoring"


def crd_schema(kind: str) -> dict[str, Any]:
    paths = sorted(CRDS.glob(f"{kind.lower()}s.monitoring.coreos.com-*.yaml"))
    if not paths:
        pytest.skip(f"no {kind} CRD under {CRDS} (the shared/ folder beside the repository)")
    crd = yaml.safe_load(paths[0].read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, document)
        for path in sorted(MONITORING.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


@pytest.mark.parametrize("path,manifest", manifests(), ids=lambda value: getattr(value, "name", ""))
def test_manifest_validates_against_its_crd(path: Path, manifest: dict[str, Any]) -> None:
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    schema = crd_schema(manifest["kind"])
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(manifest), key=str)
    assert errors == [], "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_crd_schemas_reject_a_broken_manifest() -> None:
    schema = crd_schema("PodMonitor")
    broken = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "x"},
        "spec": {"podMetricsEndpoints": [{"portNumber": "eighty"}], "selector": {}},
    }
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_prometheus_rule_holds_exactly_the_rule_files() -> None:
    (rule,) = [m for _, m in manifests() if m["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == load_rules()
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p, _ in manifests())


def test_pod_monitors_scrape_the_contract_ports() -> None:
    monitors = {m["metadata"]["name"]: m for _, m in manifests() if m["kind"] == "PodMonitor"}
    inference = monitors["mlcp-inference"]["spec"]
    assert inference["namespaceSelector"]["matchNames"] == ["ml-serving"]
    (endpoint,) = inference["podMetricsEndpoints"]
    assert (endpoint["portNumber"], endpoint["path"]) == (8080, "/metrics")
    assert {"targetLabel": "deployment"}.items() <= endpoint["relabelings"][0].items()
    training = monitors["mlcp-training"]["spec"]
    assert training["namespaceSelector"]["matchNames"] == ["ml-training"]
    (endpoint,) = training["podMetricsEndpoints"]
    assert (endpoint["portNumber"], endpoint["path"]) == (9100, "/metrics")
