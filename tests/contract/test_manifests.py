"""Rendered and static Kubernetes manifests against the real schemas, offline.

- MPIJob: the openAPIV3Schema of kubeflow.org/v2beta1 from the CRD published with
  mpi-operator v0.8.0 (`manifests/base/kubeflow.org_mpijobs.yaml` at tag v0.8.0, vendored in
  workloads/k8s/crds/mpijobs.kubeflow.org-v0.8.0.yaml). Unknown fields are forbidden here, because
  the API server would silently prune them. Its pod templates are also checked as built-in
  PodTemplates, strictly.
- Built-in kinds: `kubernetes-validate --strict` against Kubernetes 1.31.0.
- The base: `kubectl kustomize` when kubectl is on the PATH, else the kustomization's resource list.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from control.domain.training import Hyperparameters, TrainingJobSpec
from control.manifests.config import ManifestConfig
from control.manifests.examples import EXAMPLES_DIR, examples, to_yaml
from control.manifests.serving import (
    PreviewTraffic,
    ServingVersion,
    cpu_cores,
    render_preview_traffic_job,
    render_serving_stack,
)
from control.manifests.training import operator_validation_errors, render_mpijob
from tests.support.crd_schema import strict, vpa_validator
from workloads.inference.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "workloads" / "k8s" / "crds" / "mpijobs.kubeflow.org-v0.8.0.yaml"
K8S_VERSION = "1.31.0"
BASE = ROOT / "workloads" / "k8s" / "base"

SPECS = [
    TrainingJobSpec("churn-v1-0123456789ab", "churn", "s3://d/datasets/churn/v1/data.csv", "s3://a/m/"),
    TrainingJobSpec(
        "9lives-" + "x" * 70,
        "9lives",
        "/mnt/data/train.csv",
        "s3://a/models/9lives/runs/r/",
        Hyperparameters(epochs=50, learning_rate=0.001),
        workers=8,
        gpus_per_worker=8,
        deadline_seconds=86400,
    ),
]


@pytest.fixture(scope="module")
def mpijob_schema() -> jsonschema.protocols.Validator:
    if not CRD_FILE.exists():
        pytest.fail(f"{CRD_FILE} is missing: the published MPIJob CRD (mpi-operator v0.8.0) is needed")
    crd = yaml.load(CRD_FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 9k lines
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v2beta1")
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


@pytest.fixture(scope="module")
def vpa_schema() -> jsonschema.protocols.Validator:
    return vpa_validator()


def validate_builtin(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("spec", SPECS, ids=["small", "long-name-many-gpus"])
def test_rendered_mpijobs_validate_against_the_v080_crd(
    spec: TrainingJobSpec, mpijob_schema: jsonschema.protocols.Validator
) -> None:
    manifest = render_mpijob(spec, ManifestConfig())
    mpijob_schema.validate(manifest)
    assert operator_validation_errors(manifest) == []
    for role, replica in manifest["spec"]["mpiReplicaSpecs"].items():
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": role.lower()}}
        validate_builtin({**template, "template": replica["template"]})


def test_the_strict_schema_rejects_a_misspelt_field(mpijob_schema: jsonschema.protocols.Validator) -> None:
    manifest = render_mpijob(SPECS[0], ManifestConfig())
    broken = copy.deepcopy(manifest)
    broken["spec"]["slotPerWorker"] = 1
    with pytest.raises(jsonschema.ValidationError):
        mpijob_schema.validate(broken)
    broken = copy.deepcopy(manifest)
    broken["spec"]["runPolicy"]["activeDeadlineSeconds"] = "1h"
    with pytest.raises(jsonschema.ValidationError):
        mpijob_schema.validate(broken)


def test_rendered_serving_objects_validate_as_builtin_kinds_and_the_vpa_against_its_crd(
    vpa_schema: jsonschema.protocols.Validator,
) -> None:
    versions = [
        ServingVersion("churn", "churn", 1, "s3://a/models/churn/runs/r1/", "a" * 64),
        ServingVersion("churn", "churn", 2, "s3://a/models/churn/runs/r2/", "b" * 64, replicas=0),
    ]
    config = ManifestConfig(certificate_arn="arn:aws:acm:us-east-1:111122223333:certificate/abc")
    vpas = []
    for obj in render_serving_stack(versions, config, active_version=1, preview_version=2):
        if obj["kind"] == "VerticalPodAutoscaler":
            vpa_schema.validate(obj)
            vpas.append(obj)
        else:
            validate_builtin(obj)
    # One per version beside its HPA, watching that version's Deployment, recommending only.
    deployments = {o["metadata"]["name"] for o in render_serving_stack(versions, config, active_version=1)}
    assert [v["spec"]["targetRef"]["name"] for v in vpas] == ["churn-v1", "churn-v2"]
    assert {v["spec"]["targetRef"]["name"] for v in vpas} <= deployments
    assert all(v["spec"]["updatePolicy"]["updateMode"] == "Off" for v in vpas)
    broken = copy.deepcopy(vpas[0])
    broken["spec"]["updatePolicy"]["updateMode"] = "Never"
    with pytest.raises(jsonschema.ValidationError):
        vpa_schema.validate(broken)
    traffic = PreviewTraffic("churn", "churn", 2, 5.0, 1800.0, "s3://a/models/churn/runs/r2/sample.json")
    validate_builtin(render_preview_traffic_job(traffic, config))


@pytest.mark.parametrize(("cpu_request", "workers"), [("500m", 1), ("1", 1), ("1500m", 1), ("2", 2), ("3.5", 3)])
def test_the_model_server_runs_one_process_per_whole_core_the_pod_requests(cpu_request: str, workers: int) -> None:
    version = ServingVersion("churn", "churn", 1, "s3://a/", "a" * 64, cpu_request=cpu_request, cpu_limit="4")
    container = render_serving_stack([version], ManifestConfig(), active_version=1)[0]["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["resources"]["requests"]["cpu"] == cpu_request
    assert env["MLCP_WORKERS"] == str(workers)
    assert ServerSettings.from_env(env).workers == workers  # the server accepts what the manifest says


@pytest.mark.parametrize("quantity", ["", "two", "-1", "0m"])
def test_a_cpu_request_that_is_not_a_quantity_is_refused(quantity: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        cpu_cores(quantity)


def test_a_builtin_with_an_unknown_field_is_rejected() -> None:
    deployment = render_serving_stack(
        [ServingVersion("churn", "churn", 1, "s3://a/", "a" * 64)], ManifestConfig(), active_version=1
    )[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(deployment)


def base_objects() -> list[dict[str, Any]]:
    if shutil.which("kubectl"):
        built = subprocess.run(["kubectl", "kustomize", str(BASE)], check=True, capture_output=True, text=True)
        return [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((BASE / name).read_text()) if doc]


def test_the_base_validates_and_provides_what_rendered_objects_reference() -> None:
    objects = base_objects()
    for obj in objects:
        validate_builtin(obj)
    index = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}
    config = ManifestConfig()
    assert ("ServiceAccount", config.training_namespace, config.training_service_account) in index
    assert ("ServiceAccount", config.serving_namespace, config.inference_service_account) in index
    assert ("PersistentVolumeClaim", config.training_namespace, config.checkpoint_claim) in index
    serving_ns = index[("Namespace", "", config.serving_namespace)]["metadata"]["labels"]
    assert serving_ns["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ("NetworkPolicy", config.serving_namespace, "default-deny") in index
    training_rules = index[("Role", config.training_namespace, "mlcp-control-plane")]["rules"]
    assert training_rules == [
        {"apiGroups": ["kubeflow.org"], "resources": ["mpijobs"], "verbs": ["create", "get", "delete"]}
    ]


def test_committed_examples_are_what_the_renderers_produce() -> None:
    for name, objects in examples().items():
        path = EXAMPLES_DIR / name
        assert path.exists(), f"run `python -m control.manifests.examples` to write {name}"
        assert path.read_text() == to_yaml(objects), f"{name} is stale: run `python -m control.manifests.examples`"
