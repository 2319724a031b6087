"""The mpi-operator chart that terraform/addons deploys: it exists where the release points, carries
the same MPIJob CRD the tests validate rendered MPIJobs against, and renders valid objects for the
operator v0.8.0 (helm-python-sdk in `.venv-helm`, kubernetes-validate --strict)."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ADDONS = REPO / "terraform" / "addons"
CHART = REPO / "terraform" / "charts" / "mpi-operator"
VENDORED_CRD = REPO / "workloads" / "k8s" / "crds" / "mpijobs.kubeflow.org-v0.8.0.yaml"
HELM_PYTHON = REPO / ".venv-helm" / "bin" / "python"
K8S_VERSION = "1.31.0"
NAMESPACE = "mpi-operator"

RENDER = r"""
import json, sys
import helm_python as helm
chart = sys.argv[1]
lint = helm.lint(chart, values={})
with helm.Chart.load(chart) as c:
    out = c.render({}, name="mpi-operator", namespace=sys.argv[2])
    crds = [crd["data"] for crd in c.crds]
print(json.dumps({"lint": lint, "manifests": out, "crds": crds}))
"""


def unq(value: object) -> object:
    """python-hcl2 8 keeps string quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@functools.cache
def rendered() -> dict[str, Any]:
    if not HELM_PYTHON.exists():
        pytest.fail(f"helm-python-sdk is not installed at {HELM_PYTHON} (scripts/setup.sh installs it)")
    run = subprocess.run(
        [str(HELM_PYTHON), "-c", RENDER, str(CHART), NAMESPACE], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def objects() -> list[dict[str, Any]]:
    return [doc for text in rendered()["manifests"].values() for doc in yaml.safe_load_all(text) if doc]


def test_the_addons_release_points_at_the_chart_in_the_repository() -> None:
    doc = hcl2.load((ADDONS / "main.tf").open())
    release = next(
        body
        for block in doc["resource"]
        for kind, items in block.items()
        if unq(kind) == "helm_release"
        for name, body in items.items()
        if unq(name) == "mpi_operator"
    )
    variables = {
        unq(n): b for block in hcl2.load((ADDONS / "variables.tf").open())["variable"] for n, b in block.items()
    }
    default = variables["mpi_operator_chart"].get("default")
    chart = str(unq(release["chart"]))
    # The chart path is var.mpi_operator_chart, or the repository's chart when it is null (the default).
    assert default is None, f"mpi_operator_chart defaults to {default!r}: a path relative to where terraform runs"
    fallback = re.fullmatch(r'\$\{coalesce\(var\.mpi_operator_chart, "\$\{path\.module\}/([^"]+)"\)\}', chart)
    assert fallback, (
        f"the mpi_operator release's chart is {chart!r}, not var.mpi_operator_chart or the repository's chart"
    )
    resolved = (ADDONS / fallback.group(1)).resolve()
    assert resolved == CHART, resolved
    assert (resolved / "Chart.yaml").is_file()


def test_the_chart_crd_is_the_vendored_mpijob_crd_byte_for_byte() -> None:
    copies = sorted((CHART / "crds").iterdir())
    assert [p.name for p in copies] == [VENDORED_CRD.name]
    assert copies[0].read_bytes() == VENDORED_CRD.read_bytes(), (
        f"{copies[0]} differs from {VENDORED_CRD}: copy the vendored CRD into the chart"
    )
    # Helm installs what it loads from crds/: the same document.
    assert rendered()["crds"] == [VENDORED_CRD.read_text()]


def test_the_chart_lints_and_renders_the_v080_operator() -> None:
    assert rendered()["lint"]["errors"] == []
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("0.8.0", "0.8.0")
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects()}
    assert set(by_kind) == {
        ("ServiceAccount", "mpi-operator"),
        ("ClusterRole", "mpi-operator"),
        ("ClusterRoleBinding", "mpi-operator"),
        ("Deployment", "mpi-operator"),
    }
    deployment = by_kind[("Deployment", "mpi-operator")]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mpi-operator"
    container = pod["containers"][0]
    assert container["image"] == "mpioperator/mpi-operator:0.8.0"
    assert f"--lock-namespace={NAMESPACE}" in container["args"]
    subject = by_kind[("ClusterRoleBinding", "mpi-operator")]["subjects"][0]
    assert (subject["kind"], subject["name"], subject["namespace"]) == ("ServiceAccount", "mpi-operator", NAMESPACE)
    rules = by_kind[("ClusterRole", "mpi-operator")]["rules"]
    granted = {(group, resource) for r in rules for group in r["apiGroups"] for resource in r["resources"]}
    # What the operator creates for an MPIJob: the launcher Job, worker pods, hostfile, SSH keys, Service.
    for needed in [("batch", "jobs"), ("", "pods"), ("", "configmaps"), ("", "secrets"), ("", "services")]:
        assert needed in granted
    assert ("kubeflow.org", "mpijobs/status") in granted


@pytest.mark.parametrize("kind", ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"])
def test_every_rendered_object_validates_strictly(kind: str) -> None:
    for obj in objects():
        if obj["kind"] == kind:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
