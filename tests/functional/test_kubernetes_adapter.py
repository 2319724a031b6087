"""The EKS adapters (control/adapters/kubernetes_*.py) against an API server that checks what EKS checks.

The server (tests/support/kube_apiserver) authenticates the adapter's own EKS token, maps the
role through Terraform's access entries, authorizes every call against the chart's RBAC, decodes
strictly against the schemas of the Kubernetes version Terraform deploys and the vendored CRDs,
and applies writes as kube-apiserver does. No test writes what the adapter would send by hand.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from control.adapters.kubernetes_cluster import KubernetesCluster, RetryPolicy
from control.domain.training import JobState, TrainingJobSpec
from control.errors import (
    Conflict,
    DependencyError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TransientError,
)
from control.manifests.config import ManifestConfig
from control.manifests.serving import (
    PreviewTraffic,
    ServingVersion,
    render_deployment,
    render_ingress,
    render_network_policy,
    render_preview_traffic_job,
    render_preview_traffic_network_policy,
    render_service,
    render_version,
    version_selector,
)
from control.manifests.training import render_mpijob
from tests.support.kube_apiserver import Identities, KubeApiServer, VirtualClock, eks_client, eks_session
from tests.support.kube_apiserver.auth import Request
from tests.support.kube_apiserver.fixtures import identities_fixture, server_fixture  # noqa: F401 (fixtures)

SPEC = TrainingJobSpec("churn-v1-0123456789ab", "churn", "s3://d/datasets/churn/v1/data.csv", "s3://a/m/")
CONFIG = ManifestConfig()
MPIJOB_PATH = "/apis/kubeflow.org/v2beta1/namespaces/ml-training/mpijobs"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/ml-serving/deployments"
V1 = ServingVersion("churn", "churn", 1, "s3://a/models/churn/runs/r1/", "a" * 64, replicas=2)
V2 = ServingVersion("churn", "churn", 2, "s3://a/models/churn/runs/r2/", "b" * 64, replicas=2)
TRAFFIC = PreviewTraffic("churn", "churn", 2, 5.0, 600.0, "s3://a/m/sample.json")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def adapter(server: KubeApiServer, identities: Identities, sleeps: Sleeps, **client: Any) -> KubernetesCluster:
    return KubernetesCluster(
        eks_client(server, eks_session(identities), **client),
        request_timeout=(1.0, 0.5),
        retry=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.4, sleep=sleeps),
    )


@pytest.fixture
def cluster(server: KubeApiServer, identities: Identities, sleeps: Sleeps) -> KubernetesCluster:
    return adapter(server, identities, sleeps)


def stored(server: KubeApiServer, plural: str, name: str) -> dict[str, Any]:
    group = {
        "mpijobs": "kubeflow.org",
        "deployments": "apps",
        "services": "",
        "jobs": "batch",
        "ingresses": "networking.k8s.io",
        "horizontalpodautoscalers": "autoscaling",
        "verticalpodautoscalers": "autoscaling.k8s.io",
    }
    namespace = "ml-training" if plural == "mpijobs" else "ml-serving"
    obj = server.api.store.get((group[plural], plural, namespace, name))
    assert obj is not None, f"{plural}/{name} is not stored"
    return obj


def key(plural: str, name: str) -> tuple[str, str, str, str]:
    group = {"mpijobs": "kubeflow.org", "deployments": "apps", "services": ""}[plural]
    return (group, plural, "ml-training" if plural == "mpijobs" else "ml-serving", name)


# -- every call is granted, and what the chart does not grant is refused -------------------------

# Every (verb, API group, resource, namespace) the adapters use, and so what the chart must grant.
ADAPTER_CALLS = {
    ("create", "kubeflow.org", "mpijobs", "ml-training"),
    ("get", "kubeflow.org", "mpijobs", "ml-training"),
    ("delete", "kubeflow.org", "mpijobs", "ml-training"),
    ("create", "apps", "deployments", "ml-serving"),
    ("get", "apps", "deployments", "ml-serving"),
    ("update", "apps", "deployments", "ml-serving"),
    ("delete", "apps", "deployments", "ml-serving"),
    ("patch", "apps", "deployments/scale", "ml-serving"),
    ("create", "", "services", "ml-serving"),
    ("get", "", "services", "ml-serving"),
    ("update", "", "services", "ml-serving"),
    ("patch", "", "services", "ml-serving"),
    *(
        (verb, group, resource, "ml-serving")
        for group, resource in (
            ("policy", "poddisruptionbudgets"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("networking.k8s.io", "networkpolicies"),
            ("networking.k8s.io", "ingresses"),
            ("autoscaling.k8s.io", "verticalpodautoscalers"),
        )
        for verb in ("create", "get", "update", "delete")
    ),
    ("create", "batch", "jobs", "ml-serving"),
    ("get", "batch", "jobs", "ml-serving"),
    ("delete", "batch", "jobs", "ml-serving"),
}


def every_adapter_call(cluster: KubernetesCluster) -> None:
    """Each public operation of the adapter, each write path taken once (create and update)."""
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.training_job_status(SPEC.run_id)
    cluster.delete_training_job(SPEC.run_id)
    manifests = [
        *render_version(V1, CONFIG),
        render_service("churn", 1, CONFIG),
        render_service("churn", 1, CONFIG, preview=True),
        render_ingress("churn", CONFIG),
        render_network_policy("churn", CONFIG),
    ]
    for manifest in manifests:
        cluster.apply(manifest)  # created
        changed = copy.deepcopy(manifest)
        changed["metadata"]["labels"]["mlcp.dev/revision"] = "2"
        cluster.apply(changed)  # updated
    cluster.scale_deployment("churn-v1", 3)
    cluster.deployment_readiness("churn-v1")
    cluster.service_selector("churn")
    cluster.switch_service_selector("churn", version_selector("churn", 2))
    cluster.apply(render_preview_traffic_job(TRAFFIC, CONFIG))
    cluster.job_exists("churn-v2-preview-traffic")
    cluster.delete("Job", "churn-v2-preview-traffic")
    cluster.delete("Ingress", "churn")
    cluster.delete("NetworkPolicy", "churn")
    cluster.delete_deployment("churn-v1")


def test_every_call_the_adapters_make_is_granted_by_the_chart(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    every_adapter_call(cluster)
    used = {(r.verb, r.api_group, r.resource, r.namespace) for r, _ in server.api.authorizations}
    refused = [r for r, allowed in server.api.authorizations if not allowed]
    assert refused == []
    assert used == ADAPTER_CALLS


def test_a_verb_the_chart_does_not_grant_is_forbidden(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))
    with pytest.raises(DependencyError, match=r'\(403\).*cannot delete resource "services"'):
        cluster.delete("Service", "churn")
    assert server.api.authorizations[-1] == (Request("delete", "", "services", "ml-serving", "churn"), False)
    assert stored(server, "services", "churn")


# -- every manifest the platform renders is accepted by a strict API server ----------------------


def test_every_rendered_manifest_is_accepted_by_a_strict_api_server(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    manifests = [
        *render_version(V1, CONFIG),
        render_service("churn", 1, CONFIG),
        render_service("churn", 1, CONFIG, preview=True),
        render_ingress("churn", CONFIG, {"churn": 80, "churn-preview": 20}),
        render_network_policy("churn", CONFIG),
        render_preview_traffic_network_policy("churn", CONFIG),
        render_preview_traffic_job(TRAFFIC, CONFIG),
    ]
    for manifest in manifests:
        cluster.apply(manifest)
    assert all(r.query.get("fieldValidation") == "Strict" for r in server.writes("POST"))
    assert all(r.status == 201 for r in server.writes("POST")), [r.body for r in server.writes() if r.status >= 300]
    assert stored(server, "mpijobs", SPEC.run_id)["spec"] == render_mpijob(SPEC, CONFIG)["spec"]


def serving_stack(deployment: str, version: int) -> list[dict[str, Any]]:
    served = ServingVersion(deployment, "churn", version, "s3://a/models/churn/runs/r1/", "a" * 64, replicas=2)
    traffic = PreviewTraffic(deployment, "churn", version, 5.0, 600.0, "s3://a/m/sample.json")
    return [
        *render_version(served, CONFIG),
        render_service(deployment, version, CONFIG),
        render_service(deployment, version, CONFIG, preview=True),
        render_ingress(deployment, CONFIG),
        render_network_policy(deployment, CONFIG),
        render_preview_traffic_network_policy(deployment, CONFIG),
        render_preview_traffic_job(traffic, CONFIG),
    ]


def test_the_longest_deployment_name_allowed_renders_objects_the_api_server_accepts(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    from control.domain.names import check_deployment_name

    longest = check_deployment_name("d" * 55)
    for manifest in serving_stack(longest, 12345):
        cluster.apply(manifest)
    assert all(r.status == 201 for r in server.writes()), [r.body for r in server.writes() if r.status >= 300]


@pytest.mark.parametrize("deployment", ["9lives", "churn-", "d" * 56])
def test_a_deployment_name_the_domain_refuses_would_be_refused_by_the_api_server(
    cluster: KubernetesCluster, deployment: str
) -> None:
    from control.domain.names import check_deployment_name

    with pytest.raises(InvalidInput):
        check_deployment_name(deployment)
    with pytest.raises(InvalidInput, match=r"\(422\): .* is invalid: .*metadata\.(name|labels)"):
        for manifest in serving_stack(deployment, 1):
            cluster.apply(manifest)


def test_an_unknown_field_in_a_manifest_is_refused_naming_its_path(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    manifest = render_deployment(V1, CONFIG)
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/ping"}
    with pytest.raises(
        InvalidInput, match=r'unknown field "spec.template.spec.containers\[0\].readinessProbe.httpGett"'
    ):
        cluster.apply(manifest)
    mpijob = render_mpijob(SPEC, CONFIG)
    mpijob["spec"]["mpiReplicaSpecs"]["Worker"]["replica"] = 2
    with pytest.raises(InvalidInput, match=r'unknown field "spec.mpiReplicaSpecs.Worker.replica"'):
        cluster.submit_training_job(mpijob)
    assert server.api.store.objects.keys() == {k for k in server.api.store.objects if k[1] == "namespaces"}


# -- training ---------------------------------------------------------------------------------


def test_submit_creates_the_mpijob_with_the_eks_token(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    manifest = render_mpijob(SPEC, CONFIG)
    cluster.submit_training_job(manifest)
    created = stored(server, "mpijobs", SPEC.run_id)
    assert created["spec"] == manifest["spec"]
    assert created["metadata"]["annotations"]["mlcp.dev/spec-sha256"]
    assert created["metadata"]["resourceVersion"] and created["metadata"]["uid"]
    assert (server.requests[0].method, server.requests[0].path, server.requests[0].status) == ("POST", MPIJOB_PATH, 201)
    assert manifest["metadata"]["annotations"] == {"mlcp.dev/run-id": SPEC.run_id}  # caller's dict untouched


def test_submitting_the_same_job_again_succeeds_and_a_different_one_conflicts(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    assert [r.status for r in server.writes("POST")] == [201, 409]  # create first: a new run is the common case
    different = render_mpijob(TrainingJobSpec(**{**SPEC.__dict__, "workers": 4}), CONFIG)
    with pytest.raises(Conflict, match="different spec"):
        cluster.submit_training_job(different)
    assert stored(server, "mpijobs", SPEC.run_id)["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] == 2


def test_a_job_still_being_deleted_is_retried_not_reported_as_created(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    with server.api.store.lock:  # what the API server shows while finalizers run
        server.api.store.objects[key("mpijobs", SPEC.run_id)]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    with pytest.raises(TransientError, match="being deleted"):
        cluster.submit_training_job(render_mpijob(SPEC, CONFIG))


@pytest.mark.parametrize(
    ("conditions", "state", "reason", "message"),
    [
        ([], JobState.PENDING, "Submitted", "waiting for mpi-operator to pick the job up"),
        ([("Created", "True", "MPIJobCreated", "created")], JobState.PENDING, "MPIJobCreated", "created"),
        (
            [("Created", "True", "MPIJobCreated", ""), ("Running", "True", "MPIJobRunning", "running")],
            JobState.RUNNING,
            "MPIJobRunning",
            "running",
        ),
        (
            [("Created", "True", "MPIJobCreated", ""), ("Running", "False", "MPIJobRunning", ""),
             ("Succeeded", "True", "MPIJobSucceeded", "MPIJob ml-training/x successfully completed.")],
            JobState.SUCCEEDED,
            "MPIJobSucceeded",
            "MPIJob ml-training/x successfully completed.",
        ),
        (
            [("Created", "True", "MPIJobCreated", ""),
             ("Failed", "True", "BackoffLimitExceeded/Error", "Job has reached the specified backoff limit")],
            JobState.FAILED,
            "BackoffLimitExceeded/Error",
            "Job has reached the specified backoff limit",
        ),
    ],
)  # fmt: skip
def test_status_comes_from_the_operator_conditions(
    server: KubeApiServer,
    cluster: KubernetesCluster,
    conditions: list[tuple[str, str, str, str]],
    state: JobState,
    reason: str,
    message: str,
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    server.api.set_status(
        key("mpijobs", SPEC.run_id),
        {"conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions]},
    )
    status = cluster.training_job_status(SPEC.run_id)
    assert (status.name, status.state, status.reason, status.message) == (SPEC.run_id, state, reason, message)


def test_status_of_an_unknown_job_is_not_found(cluster: KubernetesCluster) -> None:
    with pytest.raises(NotFound):
        cluster.training_job_status("nope")


def test_delete_is_idempotent(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.delete_training_job(SPEC.run_id)
    cluster.delete_training_job(SPEC.run_id)
    assert server.api.store.get(key("mpijobs", SPEC.run_id)) is None
    assert [r.status for r in server.writes("DELETE")] == [200, 404]


def test_without_mpi_operator_every_call_names_what_to_install(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    server.api.crds_installed = False
    for call in (
        lambda: cluster.submit_training_job(render_mpijob(SPEC, CONFIG)),
        lambda: cluster.training_job_status(SPEC.run_id),
        lambda: cluster.delete_training_job(SPEC.run_id),
    ):
        with pytest.raises(DependencyError, match="mpi-operator v0.8.0"):
            call()


def test_a_missing_namespace_is_a_dependency_error(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    server.api.store.delete(("", "namespaces", None, "ml-training"))
    with pytest.raises(DependencyError, match="ml-training"):
        cluster.submit_training_job(render_mpijob(SPEC, CONFIG))


# -- serving ----------------------------------------------------------------------------------


def test_apply_creates_then_updates_without_touching_replicas(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.apply_deployment(render_deployment(V1, CONFIG))
    cluster.scale_deployment("churn-v1", 5)
    changed = render_deployment(ServingVersion(**{**V1.__dict__, "cpu_limit": "3"}), CONFIG)
    cluster.apply_deployment(changed)
    deployment = stored(server, "deployments", "churn-v1")
    assert deployment["spec"]["replicas"] == 5
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "3"
    assert deployment["metadata"]["generation"] == 3  # created, scaled, changed


def test_applying_what_is_already_applied_writes_nothing(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    for manifest in render_version(V1, CONFIG):
        cluster.apply(manifest)
    cluster.scale_deployment("churn-v1", 4)  # someone else's field: not a reason to write
    requests = len(server.requests)
    for manifest in render_version(V1, CONFIG):
        cluster.apply(manifest)
    assert [r.method for r in server.requests[requests:]] == ["GET"] * len(render_version(V1, CONFIG))
    assert stored(server, "deployments", "churn-v1")["spec"]["replicas"] == 4


def test_applying_a_manifest_that_drops_an_env_var_removes_it(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    """A strategic merge patch keeps list entries it does not mention (env merges by name): an
    env var a newer manifest drops would live on in the cluster. Apply must replace."""
    with_extra = render_deployment(V1, CONFIG)
    with_extra["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "OLD_SETTING", "value": "1"})
    cluster.apply(with_extra)
    cluster.apply(render_deployment(V1, CONFIG))
    env = stored(server, "deployments", "churn-v1")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "OLD_SETTING" not in {e["name"] for e in env}
    assert env == render_deployment(V1, CONFIG)["spec"]["template"]["spec"]["containers"][0]["env"]


def test_changing_the_ingress_weights_replaces_the_annotation(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.apply(render_ingress("churn", CONFIG, {"churn": 100, "churn-preview": 0}))
    cluster.apply(render_ingress("churn", CONFIG, {"churn": 70, "churn-preview": 30}))
    annotations = stored(server, "ingresses", "churn")["metadata"]["annotations"]
    wanted = render_ingress("churn", CONFIG, {"churn": 70, "churn-preview": 30})["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k != "mlcp.dev/spec-sha256"} == wanted


def test_readiness_needs_every_replica_ready_on_the_latest_spec(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.apply_deployment(render_deployment(V2, CONFIG))
    status = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2}
    server.api.set_status(key("deployments", "churn-v2"), status)
    readiness = cluster.deployment_readiness("churn-v2")
    assert (readiness.desired, readiness.ready, readiness.is_ready) == (2, 1, False)
    server.api.set_status(key("deployments", "churn-v2"), {**status, "readyReplicas": 2, "availableReplicas": 2})
    assert cluster.deployment_readiness("churn-v2").is_ready
    cluster.scale_deployment("churn-v2", 3)  # a new generation the controller has not seen yet
    assert not cluster.deployment_readiness("churn-v2").is_ready
    with pytest.raises(NotFound):
        cluster.deployment_readiness("churn-v9")


def test_switching_a_selector_that_is_already_right_writes_nothing(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))
    assert cluster.switch_service_selector("churn", version_selector("churn", 1)) is False
    assert server.writes("PATCH") == []
    assert cluster.switch_service_selector("churn", version_selector("churn", 2)) is True
    assert cluster.service_selector("churn") == version_selector("churn", 2)
    assert cluster.switch_service_selector("churn", version_selector("churn", 2)) is False
    assert len(server.writes("PATCH")) == 1
    assert server.writes("PATCH")[0].content_type == "application/strategic-merge-patch+json"


def test_a_concurrent_change_makes_the_switch_retryable(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))

    def someone_else_switches() -> None:
        service = stored(server, "services", "churn")
        service["spec"]["selector"] = version_selector("churn", 3)
        server.api.store.put(key("services", "churn"), service)

    server.fail("PATCH", "/services/churn", 0, action=someone_else_switches)
    with pytest.raises(PreconditionFailed) as caught:
        cluster.switch_service_selector("churn", version_selector("churn", 2))
    assert caught.value.retryable
    assert cluster.service_selector("churn") == version_selector("churn", 3)


def test_applying_a_service_again_never_moves_traffic(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))
    cluster_ip = stored(server, "services", "churn")["spec"]["clusterIP"]
    cluster.switch_service_selector("churn", version_selector("churn", 2))
    changed = render_service("churn", 1, CONFIG)
    changed["metadata"]["labels"]["team"] = "ml"
    cluster.apply(changed)
    service = stored(server, "services", "churn")
    assert service["spec"]["selector"] == version_selector("churn", 2)
    assert service["metadata"]["labels"]["team"] == "ml"
    assert service["spec"]["clusterIP"] == cluster_ip  # the replace kept the allocated address


def test_delete_deployment_removes_the_version_and_is_idempotent(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    for obj in render_version(V1, CONFIG):
        cluster.apply(obj)
    assert {k[1] for k in server.api.store.objects if k[1] != "namespaces"} == {
        "deployments", "poddisruptionbudgets", "horizontalpodautoscalers", "verticalpodautoscalers"
    }  # fmt: skip
    assert "/apis/autoscaling.k8s.io/v1/namespaces/ml-serving/verticalpodautoscalers" in {
        r.path for r in server.writes("POST")
    }
    cluster.delete_deployment("churn-v1")
    cluster.delete_deployment("churn-v1")
    assert {k[1] for k in server.api.store.objects} == {"namespaces"}


def test_the_vpa_recommendation_is_read_beside_the_hpa(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    from control.manifests.serving import render_version

    for obj in render_version(V1, CONFIG):
        cluster.apply(obj)
    assert cluster.autoscaling("churn-v1")["vpa"] == {"update_mode": "Off", "recommendation": None}
    # What VPA's recommender writes once it has samples (autoscaling.k8s.io/v1 status).
    target = {"cpu": "250m", "memory": "600Mi"}
    vpa = stored(server, "verticalpodautoscalers", "churn-v1")
    vpa["status"] = {
        "recommendation": {
            "containerRecommendations": [
                {
                    "containerName": "model-server",
                    "target": target,
                    "lowerBound": {"cpu": "100m", "memory": "400Mi"},
                    "upperBound": {"cpu": "1", "memory": "2Gi"},
                    "uncappedTarget": target,
                }
            ]
        }
    }
    hpa = stored(server, "horizontalpodautoscalers", "churn-v1")
    hpa["status"] = {"currentReplicas": 2, "desiredReplicas": 3}
    for plural, obj in (("verticalpodautoscalers", vpa), ("horizontalpodautoscalers", hpa)):
        server.api.store.put(
            ("autoscaling.k8s.io" if plural.startswith("v") else "autoscaling", plural, "ml-serving", "churn-v1"), obj
        )
    shown = cluster.autoscaling("churn-v1")
    assert shown["hpa"] == {
        "min_replicas": 2, "max_replicas": 10, "target_cpu_utilization": 70,
        "current_replicas": 2, "desired_replicas": 3,
    }  # fmt: skip
    assert shown["vpa"]["recommendation"][0]["target"] == target
    assert shown["vpa"]["recommendation"][0]["upper_bound"] == {"cpu": "1", "memory": "2Gi"}
    assert cluster.autoscaling("gone") == {"hpa": None, "vpa": None}


def test_the_preview_traffic_job_is_created_once_seen_and_deleted_with_its_pods(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    job = render_preview_traffic_job(TRAFFIC, CONFIG)
    assert cluster.job_exists("churn-v2-preview-traffic") is False
    cluster.apply(job)
    cluster.apply(job)  # a Job's template cannot change: applying it again writes nothing
    assert [(r.path, r.status) for r in server.writes()] == [("/apis/batch/v1/namespaces/ml-serving/jobs", 201)]
    assert stored(server, "jobs", "churn-v2-preview-traffic")["spec"] == job["spec"]
    assert server.writes("PUT") == server.writes("PATCH") == []
    assert cluster.job_exists("churn-v2-preview-traffic") is True
    cluster.delete("Job", "churn-v2-preview-traffic")
    cluster.delete("Job", "churn-v2-preview-traffic")
    assert cluster.job_exists("churn-v2-preview-traffic") is False
    deletes = [r.body for r in server.writes("DELETE")]
    assert deletes and all((body or {}).get("propagationPolicy") == "Background" for body in deletes)


def test_eks_settings_without_a_cluster_name_fail_clearly() -> None:
    from control.settings import Settings

    settings = Settings(region="us-east-1", data_bucket="d", artifacts_bucket="a", registry_table="t")
    with pytest.raises(DependencyError, match="CONTROL_EKS_CLUSTER_NAME"):
        KubernetesCluster.for_settings(settings)


# -- faults a real cluster produces ----------------------------------------------------------------


def test_a_conflict_on_update_is_retried_with_a_fresh_read(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    cluster.apply(render_deployment(V1, CONFIG))

    def the_hpa_scales() -> None:  # between the adapter's read and its replace
        deployment = stored(server, "deployments", "churn-v1")
        deployment["spec"]["replicas"] = 6
        server.api.store.put(key("deployments", "churn-v1"), deployment)

    server.fail("PUT", "/deployments/churn-v1", 0, action=the_hpa_scales)
    cluster.apply(render_deployment(ServingVersion(**{**V1.__dict__, "cpu_limit": "3"}), CONFIG))
    assert [r.status for r in server.writes("PUT")] == [409, 200]
    deployment = stored(server, "deployments", "churn-v1")
    assert deployment["spec"]["replicas"] == 6  # the HPA's write is not lost
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "3"


def test_an_update_that_keeps_conflicting_gives_up_retryably(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    cluster.apply(render_deployment(V1, CONFIG))
    replicas = iter(range(10, 20))

    def a_busy_writer() -> None:
        deployment = stored(server, "deployments", "churn-v1")
        deployment["spec"]["replicas"] = next(replicas)
        server.api.store.put(key("deployments", "churn-v1"), deployment)

    server.fail("PUT", "/deployments/churn-v1", 0, action=a_busy_writer, times=3)
    with pytest.raises(PreconditionFailed, match="kept changing") as caught:
        cluster.apply(render_deployment(ServingVersion(**{**V1.__dict__, "cpu_limit": "3"}), CONFIG))
    assert caught.value.retryable


def test_throttling_is_retried_after_the_servers_delay(
    server: KubeApiServer, cluster: KubernetesCluster, sleeps: Sleeps
) -> None:
    throttled = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 429,
                 "message": "Too many requests, please try again later.", "reason": "TooManyRequests"}  # fmt: skip
    server.fail("POST", MPIJOB_PATH, 429, body=throttled, headers={"Retry-After": "0.3"}, times=2)
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    assert [r.status for r in server.writes("POST")] == [429, 429, 201]
    assert sleeps == [0.3, 0.3]


def test_server_errors_are_retried_with_backoff_then_a_retryable_error(
    server: KubeApiServer, cluster: KubernetesCluster, sleeps: Sleeps
) -> None:
    server.fail("GET", MPIJOB_PATH, 503, body="", times=3)
    with pytest.raises(
        TransientError, match=r"503 for MPIJob .*: Service Unavailable \(gave up after 3 attempts\)"
    ) as caught:
        cluster.training_job_status(SPEC.run_id)
    assert caught.value.retryable
    assert sleeps == [0.05, 0.1]  # exponential from base_delay
    server.fail("GET", MPIJOB_PATH, 500, body="etcdserver: request timed out", times=1)
    with pytest.raises(NotFound):  # the second try reaches the API, which has no such job
        cluster.training_job_status(SPEC.run_id)


def test_a_read_that_times_out_is_retried_then_transient(
    server: KubeApiServer, cluster: KubernetesCluster, sleeps: Sleeps
) -> None:
    server.fail("GET", DEPLOYMENT_PATH, 200, body={}, delay=1.0, times=3)
    started = time.monotonic()
    with pytest.raises(TransientError, match="unreachable or slow"):
        cluster.deployment_readiness("churn-v1")
    assert time.monotonic() - started < 2.9  # three reads of 0.5 s, not three answers of 1 s
    assert len(sleeps) == 2


def test_an_unreachable_api_is_a_transient_error(sleeps: Sleeps) -> None:
    from kubernetes.client import ApiClient, Configuration

    configuration = Configuration(host="http://127.0.0.1:1")
    configuration.retries = False
    cluster = KubernetesCluster(ApiClient(configuration), request_timeout=0.5, retry=RetryPolicy(sleep=sleeps))
    with pytest.raises(TransientError):
        cluster.training_job_status(SPEC.run_id)


def test_the_token_is_refreshed_before_it_expires_mid_sequence(
    server: KubeApiServer, identities: Identities, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock(server, monkeypatch)
    cluster = adapter(server, identities, sleeps, clock=clock.monotonic)
    cluster.apply(render_deployment(V1, CONFIG))
    for _ in range(4):  # an hour of rollout steps, 11 minutes apart: each token would expire at 15
        clock.advance(11 * 60)
        cluster.scale_deployment("churn-v1", 2)
        cluster.deployment_readiness("churn-v1")
    assert 401 not in {r.status for r in server.requests}
    assert len({r.token_tail for r in server.requests}) == 5


def test_a_token_that_is_not_refreshed_expires(
    server: KubeApiServer, identities: Identities, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock(server, monkeypatch)
    cluster = adapter(server, identities, sleeps, clock=clock.monotonic, refresh_seconds=float("inf"))
    cluster.apply(render_deployment(V1, CONFIG))
    clock.advance(16 * 60)
    with pytest.raises(DependencyError, match=r"\(401\)"):
        cluster.deployment_readiness("churn-v1")


def test_a_token_of_another_cluster_is_refused(server: KubeApiServer, identities: Identities, sleeps: Sleeps) -> None:
    cluster = adapter(server, identities, sleeps, cluster_name="mlcp-prod")
    with pytest.raises(DependencyError, match=r"\(401\)"):
        cluster.apply(copy.deepcopy(render_deployment(V1, CONFIG)))


def test_the_canary_split_is_read_back_from_the_applied_ingress(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    from control.manifests.serving import ingress_weights, render_ingress

    assert cluster.ingress_weights("churn") == {}  # no Ingress yet: no split
    cluster.apply(render_ingress("churn", CONFIG, ingress_weights("churn", 10)))
    assert cluster.ingress_weights("churn") == {"churn": 90, "churn-canary": 10}
    cluster.apply(render_ingress("churn", CONFIG, ingress_weights("churn", 60)))  # a weight change is a patch
    assert cluster.ingress_weights("churn") == {"churn": 40, "churn-canary": 60}
