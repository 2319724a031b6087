"""The Kubernetes adapter against a fake API server at the HTTP boundary.

The fake is a real HTTP server on 127.0.0.1 that speaks the paths the adapter uses (MPIJobs,
Deployments and their scale, Services, PDBs, HPAs, NetworkPolicies, Ingresses) and can be told
to fail; the adapter's real `kubernetes` ApiClient talks to it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from control.adapters.kubernetes_cluster import KubernetesCluster
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
from control.manifests.serving import ServingVersion, render_deployment, render_service, version_selector
from control.manifests.training import render_mpijob

PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>scale))?$"
)


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int
    body: Any = None
    headers: dict[str, str] | None = None
    delay: float = 0.0
    times: int = 1


class FakeKubernetesApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.namespaces = {"ml-training", "ml-serving"}
        self.crd_installed = True
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._version = 0

    def fail(self, method: str, path_contains: str, status: int, **kwargs: Any) -> None:
        self.faults.append(Fault(method, path_contains, status, **kwargs))

    def writes(self, method: str) -> list[tuple[str, Any]]:
        return [(path, body) for m, path, body, _ in self.requests if m == method]

    def _status(self, code: int, reason: str, message: str, details: dict | None = None) -> tuple[int, Any]:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "details": details or {}, "code": code}  # fmt: skip
        return code, body

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        for fault in self.faults:
            if fault.times and fault.method == method and fault.path_contains in path:
                fault.times -= 1
                time.sleep(fault.delay)
                return fault.status, fault.body, fault.headers or {}
        match = PATH.match(path)
        if not match:
            return 404, "404 page not found", {}
        group, ns, plural, name, sub = (match.group(k) for k in ("group", "ns", "plural", "name", "sub"))
        if group == "kubeflow.org" and not self.crd_installed:
            return 404, "404 page not found", {}
        with self.lock:
            code, payload = self._route(method, ns, plural, name, sub, body)
        return code, payload, {}

    def _route(self, method: str, ns: str, plural: str, name: str | None, sub: str | None, body: Any):  # noqa: ANN202
        if ns not in self.namespaces:
            return self._status(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        if method == "POST" and name is None:
            key = (ns, plural, body["metadata"]["name"])
            if key in self.objects:
                return self._status(409, "AlreadyExists", f'{plural} "{key[2]}" already exists', {"name": key[2]})
            self._version += 1
            obj = copy.deepcopy(body)
            obj["metadata"].update({"resourceVersion": str(self._version), "generation": 1, "uid": f"uid-{key[2]}"})
            self.objects[key] = obj
            return 201, obj
        key = (ns, plural, name or "")
        if key not in self.objects:
            return self._status(404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural})
        obj = self.objects[key]
        if method == "GET":
            return 200, obj
        if method == "DELETE":
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
        if method == "PATCH" and sub == "scale":
            obj["spec"]["replicas"] = body["spec"]["replicas"]
            scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name, "namespace": ns},
                     "spec": {"replicas": obj["spec"]["replicas"]}, "status": {"replicas": 0}}  # fmt: skip
            return 200, scale
        if method == "PATCH":
            wanted_version = (body.get("metadata") or {}).get("resourceVersion")
            if wanted_version and wanted_version != obj["metadata"]["resourceVersion"]:
                return self._status(409, "Conflict", "the object has been modified; please apply your changes")
            before = json.dumps(obj.get("spec"), sort_keys=True)
            merge(obj, body)
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            if json.dumps(obj.get("spec"), sort_keys=True) != before:
                obj["metadata"]["generation"] += 1
            return 200, obj
        return self._status(405, "MethodNotAllowed", method)


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386), which is what strategic merge does for these fields."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def serve(api: FakeKubernetesApi) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path = self.path.split("?", 1)[0]
            api.requests.append((self.command, path, body, {k.lower(): v for k, v in self.headers.items()}))
            code, payload, headers = api.handle(self.command, path, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            try:
                self.send_response(code)
                content_type = "text/plain" if isinstance(payload, str) else "application/json"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for header, value in headers.items():
                    self.send_header(header, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def api() -> Iterator[FakeKubernetesApi]:
    fake = FakeKubernetesApi()
    server = serve(fake)
    fake.port = server.server_address[1]  # type: ignore[attr-defined]
    yield fake
    server.shutdown()
    server.server_close()


def client_for(port: int) -> ApiClient:
    configuration = Configuration(host=f"http://127.0.0.1:{port}")
    configuration.api_key = {"authorization": "k8s-aws-v1.token"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.retries = False  # one request per call; retrying is the state machine's job
    return ApiClient(configuration)


@pytest.fixture
def cluster(api: FakeKubernetesApi) -> KubernetesCluster:
    return KubernetesCluster(client_for(api.port), request_timeout=(1.0, 0.5))  # type: ignore[attr-defined]


SPEC = TrainingJobSpec("churn-v1-0123456789ab", "churn", "s3://d/datasets/churn/v1/data.csv", "s3://a/m/")
CONFIG = ManifestConfig()
MPIJOB_PATH = "/apis/kubeflow.org/v2beta1/namespaces/ml-training/mpijobs"


def stored_mpijob(api: FakeKubernetesApi, name: str = "churn-v1-0123456789ab") -> dict[str, Any]:
    return api.objects[("ml-training", "mpijobs", name)]


# -- training ---------------------------------------------------------------------------------


def test_submit_creates_the_mpijob_with_the_bearer_token(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    manifest = render_mpijob(SPEC, CONFIG)
    cluster.submit_training_job(manifest)
    stored = stored_mpijob(api)
    assert stored["spec"] == manifest["spec"]
    assert stored["metadata"]["annotations"]["mlcp.dev/spec-sha256"]
    method, path, _, headers = api.requests[0]
    assert (method, path) == ("POST", MPIJOB_PATH)
    assert headers["authorization"] == "Bearer k8s-aws-v1.token"
    assert manifest["metadata"]["annotations"] == {"mlcp.dev/run-id": SPEC.run_id}  # caller's dict untouched


def test_submitting_the_same_job_again_succeeds_and_a_different_one_conflicts(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    assert len(api.objects) == 1
    different = render_mpijob(TrainingJobSpec(**{**SPEC.__dict__, "workers": 4}), CONFIG)
    with pytest.raises(Conflict, match="different spec"):
        cluster.submit_training_job(different)
    assert stored_mpijob(api)["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] == 2


def test_a_job_still_being_deleted_is_retried_not_reported_as_created(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    stored_mpijob(api)["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
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
    api: FakeKubernetesApi,
    cluster: KubernetesCluster,
    conditions: list[tuple[str, str, str, str]],
    state: JobState,
    reason: str,
    message: str,
) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    stored_mpijob(api)["status"] = {
        "conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions]
    }
    status = cluster.training_job_status(SPEC.run_id)
    assert (status.name, status.state, status.reason, status.message) == (SPEC.run_id, state, reason, message)


def test_status_of_an_unknown_job_is_not_found(cluster: KubernetesCluster) -> None:
    with pytest.raises(NotFound):
        cluster.training_job_status("nope")


def test_delete_is_idempotent(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.delete_training_job(SPEC.run_id)
    cluster.delete_training_job(SPEC.run_id)
    assert api.objects == {}
    assert [m for m, *_ in api.requests].count("DELETE") == 2


def test_without_mpi_operator_every_call_names_what_to_install(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    api.crd_installed = False
    for call in (
        lambda: cluster.submit_training_job(render_mpijob(SPEC, CONFIG)),
        lambda: cluster.training_job_status(SPEC.run_id),
        lambda: cluster.delete_training_job(SPEC.run_id),
    ):
        with pytest.raises(DependencyError, match="mpi-operator v0.8.0"):
            call()


def test_a_missing_namespace_is_a_dependency_error(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    api.namespaces.discard("ml-training")
    with pytest.raises(DependencyError, match="ml-training"):
        cluster.submit_training_job(render_mpijob(SPEC, CONFIG))


def test_throttling_and_server_errors_are_retryable(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    throttled = {"kind": "Status", "status": "Failure", "reason": "TooManyRequests", "message": "slow down"}
    api.fail("POST", MPIJOB_PATH, 429, body=throttled, headers={"Retry-After": "3"})
    with pytest.raises(TransientError) as caught:
        cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    assert caught.value.retryable and caught.value.retry_after == 3.0 and "slow down" in caught.value.message
    api.fail("GET", MPIJOB_PATH, 500, body="etcdserver: request timed out")
    with pytest.raises(TransientError):
        cluster.training_job_status(SPEC.run_id)
    api.fail("POST", MPIJOB_PATH, 503, body="")
    with pytest.raises(TransientError):
        cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))  # the fault is gone: the retry works
    assert len(api.objects) == 1


def test_a_slow_api_is_a_transient_error(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    api.fail("GET", MPIJOB_PATH, 200, body={}, delay=1.5)
    started = time.monotonic()
    with pytest.raises(TransientError, match="unreachable or slow"):
        cluster.training_job_status(SPEC.run_id)
    assert time.monotonic() - started < 1.4


def test_an_unreachable_api_is_a_transient_error() -> None:
    cluster = KubernetesCluster(client_for(1), request_timeout=0.5)
    with pytest.raises(TransientError):
        cluster.training_job_status(SPEC.run_id)


def test_an_invalid_object_is_fatal(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    invalid = {"kind": "Status", "status": "Failure", "reason": "Invalid",
               "message": "MPIJob.kubeflow.org is invalid: spec.slotsPerWorker: Invalid value"}  # fmt: skip
    api.fail("POST", MPIJOB_PATH, 422, body=invalid)
    with pytest.raises(InvalidInput, match="slotsPerWorker") as caught:
        cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    assert not caught.value.retryable


# -- serving ----------------------------------------------------------------------------------

V1 = ServingVersion("churn", "churn", 1, "s3://a/models/churn/runs/r1/", "a" * 64, replicas=2)
V2 = ServingVersion("churn", "churn", 2, "s3://a/models/churn/runs/r2/", "b" * 64, replicas=2)


def test_apply_creates_then_updates_without_touching_replicas(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    cluster.apply_deployment(render_deployment(V1, CONFIG))
    cluster.scale_deployment("churn-v1", 5)
    changed = render_deployment(ServingVersion(**{**V1.__dict__, "cpu_limit": "3"}), CONFIG)
    cluster.apply_deployment(changed)
    stored = api.objects[("ml-serving", "deployments", "churn-v1")]
    assert stored["spec"]["replicas"] == 5
    assert stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "3"


def test_readiness_needs_every_replica_ready_on_the_latest_spec(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    cluster.apply_deployment(render_deployment(V2, CONFIG))
    stored = api.objects[("ml-serving", "deployments", "churn-v2")]
    stored["status"] = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2}
    readiness = cluster.deployment_readiness("churn-v2")
    assert (readiness.desired, readiness.ready, readiness.is_ready) == (2, 1, False)
    stored["status"].update(readyReplicas=2, availableReplicas=2)
    assert cluster.deployment_readiness("churn-v2").is_ready
    cluster.scale_deployment("churn-v2", 3)  # a new generation the controller has not seen yet
    assert not cluster.deployment_readiness("churn-v2").is_ready
    with pytest.raises(NotFound):
        cluster.deployment_readiness("churn-v9")


def test_switching_a_selector_that_is_already_right_writes_nothing(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))
    assert cluster.switch_service_selector("churn", version_selector("churn", 1)) is False
    assert api.writes("PATCH") == []
    assert cluster.switch_service_selector("churn", version_selector("churn", 2)) is True
    assert cluster.service_selector("churn") == version_selector("churn", 2)
    assert cluster.switch_service_selector("churn", version_selector("churn", 2)) is False
    assert len(api.writes("PATCH")) == 1


def test_a_concurrent_change_makes_the_switch_retryable(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))
    api.objects[("ml-serving", "services", "churn")]["metadata"]["resourceVersion"] = "changed-by-someone"
    api.fail(
        "GET", "/services/churn", 200, body=json.loads(json.dumps(api.objects[("ml-serving", "services", "churn")]))
    )
    api.objects[("ml-serving", "services", "churn")]["metadata"]["resourceVersion"] = "changed-again"
    with pytest.raises(PreconditionFailed) as caught:
        cluster.switch_service_selector("churn", version_selector("churn", 2))
    assert caught.value.retryable
    assert cluster.service_selector("churn") == version_selector("churn", 1)


def test_applying_a_service_again_never_moves_traffic(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    cluster.apply(render_service("churn", 1, CONFIG))
    cluster.switch_service_selector("churn", version_selector("churn", 2))
    cluster.apply(render_service("churn", 1, CONFIG))
    assert cluster.service_selector("churn") == version_selector("churn", 2)


def test_delete_deployment_removes_the_version_and_is_idempotent(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    from control.manifests.serving import render_version

    for obj in render_version(V1, CONFIG):
        cluster.apply(obj)
    assert {plural for _, plural, _ in api.objects} == {
        "deployments", "poddisruptionbudgets", "horizontalpodautoscalers", "verticalpodautoscalers"
    }  # fmt: skip
    assert "/apis/autoscaling.k8s.io/v1/namespaces/ml-serving/verticalpodautoscalers" in dict(api.writes("POST"))
    cluster.delete_deployment("churn-v1")
    cluster.delete_deployment("churn-v1")
    assert api.objects == {}


def test_the_vpa_recommendation_is_read_beside_the_hpa(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    from control.manifests.serving import render_version

    for obj in render_version(V1, CONFIG):
        cluster.apply(obj)
    assert cluster.autoscaling("churn-v1")["vpa"] == {"update_mode": "Off", "recommendation": None}
    # What VPA's recommender writes once it has samples (autoscaling.k8s.io/v1 status).
    target = {"cpu": "250m", "memory": "600Mi"}
    api.objects[("ml-serving", "verticalpodautoscalers", "churn-v1")]["status"] = {
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
    api.objects[("ml-serving", "horizontalpodautoscalers", "churn-v1")]["status"] = {
        "currentReplicas": 2,
        "desiredReplicas": 3,
    }
    shown = cluster.autoscaling("churn-v1")
    assert shown["hpa"] == {
        "min_replicas": 2, "max_replicas": 10, "target_cpu_utilization": 70,
        "current_replicas": 2, "desired_replicas": 3,
    }  # fmt: skip
    assert shown["vpa"]["recommendation"][0]["target"] == target
    assert shown["vpa"]["recommendation"][0]["upper_bound"] == {"cpu": "1", "memory": "2Gi"}
    assert cluster.autoscaling("gone") == {"hpa": None, "vpa": None}


def test_the_preview_traffic_job_is_created_once_seen_and_deleted_with_its_pods(
    api: FakeKubernetesApi, cluster: KubernetesCluster
) -> None:
    from control.manifests.serving import PreviewTraffic, render_preview_traffic_job

    job = render_preview_traffic_job(PreviewTraffic("churn", "churn", 2, 5.0, 600.0, "s3://a/m/sample.json"), CONFIG)
    assert cluster.job_exists("churn-v2-preview-traffic") is False
    cluster.apply(job)
    cluster.apply(job)  # a Job's template cannot change: applying it again writes nothing
    assert {path for path, _ in api.writes("POST")} == {"/apis/batch/v1/namespaces/ml-serving/jobs"}
    assert api.objects[("ml-serving", "jobs", "churn-v2-preview-traffic")]["spec"] == job["spec"]
    assert api.writes("PATCH") == []
    assert cluster.job_exists("churn-v2-preview-traffic") is True
    cluster.delete("Job", "churn-v2-preview-traffic")
    cluster.delete("Job", "churn-v2-preview-traffic")
    assert cluster.job_exists("churn-v2-preview-traffic") is False
    deletes = [body for method, path, body, _ in api.requests if method == "DELETE"]
    assert deletes and all((body or {}).get("propagationPolicy") == "Background" for body in deletes)


def test_serving_errors_are_translated_too(api: FakeKubernetesApi, cluster: KubernetesCluster) -> None:
    api.fail("PATCH", "/deployments/churn-v1/scale", 429, body="", headers={"Retry-After": "2"})
    cluster.apply_deployment(render_deployment(V1, CONFIG))
    with pytest.raises(TransientError):
        cluster.scale_deployment("churn-v1", 0)
    with pytest.raises(NotFound):
        cluster.scale_deployment("churn-v7", 0)


def test_eks_settings_without_a_cluster_name_fail_clearly() -> None:
    from control.settings import Settings

    settings = Settings(region="us-east-1", data_bucket="d", artifacts_bucket="a", registry_table="t")
    with pytest.raises(DependencyError, match="CONTROL_EKS_CLUSTER_NAME"):
        KubernetesCluster.for_settings(settings)
