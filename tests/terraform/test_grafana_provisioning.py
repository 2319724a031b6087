"""The Grafana dashboards reach Grafana on EKS: the mlcp-platform chart, rendered (helm-python-sdk in
`.venv-helm`) with the values terraform/addons gives it, holds one ConfigMap per
dashboards/grafana/*.json with that file's exact text, labelled and placed where the Grafana
sidecar of kube-prometheus-stack (configured by the same addons) looks; every object validates
(kubernetes-validate --strict)."""

from __future__ import annotations

import functools
import json
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.addons_values import REPO, release_values, releases
from tests.support.crd_schema import vpa_validator

CHART = REPO / "terraform" / "charts" / "mlcp-platform"
GRAFANA_DIR = REPO / "dashboards" / "grafana"
HELM_PYTHON = REPO / ".venv-helm" / "bin" / "python"
K8S_VERSION = "1.31.0"

RENDER = r"""
import json, sys
import helm_python as helm
chart, values = sys.argv[1], json.load(sys.stdin)
lint = helm.lint(chart, values=values)
with helm.Chart.load(chart) as c:
    out = c.render(values, name="mlcp-platform", namespace="kube-system")
print(json.dumps({"lint": lint, "manifests": out}))
"""


@functools.cache
def rendered() -> dict[str, Any]:
    if not HELM_PYTHON.exists():
        pytest.fail(f"helm-python-sdk is not installed at {HELM_PYTHON} (scripts/setup.sh installs it)")
    run = subprocess.run(
        [str(HELM_PYTHON), "-c", RENDER, str(CHART)],
        input=json.dumps(release_values()["mlcp_platform"]),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def dashboard_configmaps() -> list[dict[str, Any]]:
    return [
        doc
        for name, text in rendered()["manifests"].items()
        if name.endswith("grafana-dashboards.yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def test_the_chart_lints_with_the_addons_values() -> None:
    assert rendered()["lint"]["errors"] == []


def test_one_configmap_per_dashboard_holds_the_committed_json_exactly() -> None:
    files = sorted(GRAFANA_DIR.glob("*.json"))
    assert files, "no dashboards in dashboards/grafana"
    held = {key: value for cm in dashboard_configmaps() for key, value in cm["data"].items()}
    assert sorted(held) == [f.name for f in files]
    for path in files:
        assert held[path.name] == path.read_text(), f"the ConfigMap for {path.name} differs from the file"
        assert json.loads(held[path.name])["uid"] == json.loads(path.read_text())["uid"]


def test_the_grafana_sidecar_loads_them() -> None:
    sidecar = release_values()["kube_prometheus_stack"]["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    for cm in dashboard_configmaps():
        assert cm["kind"] == "ConfigMap"
        assert cm["metadata"]["namespace"] == sidecar["searchNamespace"]
        assert cm["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    # The sidecar watches the namespace kube-prometheus-stack (and so Grafana) is installed in.
    assert releases()["kube_prometheus_stack"]["namespace"] == json.dumps(sidecar["searchNamespace"])


def test_every_rendered_builtin_object_validates_strictly() -> None:
    objects = [doc for text in rendered()["manifests"].values() for doc in yaml.safe_load_all(text) if doc]
    # Custom resources (PodMonitor, PrometheusRule; the VPAs below) are checked against their CRDs.
    custom = ("monitoring.coreos.com/", "autoscaling.k8s.io/")
    builtin = [o for o in objects if not o["apiVersion"].startswith(custom)]
    assert any(o["kind"] == "ConfigMap" for o in builtin)
    for obj in builtin:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_platforms_own_pods_get_recommendation_only_vpas_valid_for_the_installed_crd() -> None:
    validator = vpa_validator()
    objects = [doc for text in rendered()["manifests"].values() for doc in yaml.safe_load_all(text) if doc]
    vpas = [o for o in objects if o["kind"] == "VerticalPodAutoscaler"]
    for vpa in vpas:
        validator.validate(vpa)
        assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
    targets = {
        (v["metadata"]["namespace"], v["spec"]["targetRef"]["kind"], v["spec"]["targetRef"]["name"]) for v in vpas
    }
    assert ("mpi-operator", "Deployment", "mpi-operator") in targets
    assert ("monitoring", "StatefulSet", "prometheus-kube-prometheus-stack-prometheus") in targets
    assert len(targets) == len(release_values()["mlcp_platform"]["verticalPodAutoscalers"]) >= 8
