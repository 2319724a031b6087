"""The Kubernetes API test server checks what a real (EKS) API server checks, and answers as it does.

Each test sends the HTTP request a client would and asserts the real server's answer: the token,
access entries and RBAC of the deployed platform; strict decoding against the schemas of the
Kubernetes version Terraform targets; the three patch formats; resourceVersion preconditions.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import pytest
import requests

from control.adapters.kubernetes_eks import eks_token
from control.domain.training import TrainingJobSpec
from control.manifests.config import ManifestConfig
from control.manifests.serving import ServingVersion, render_deployment, render_service
from control.manifests.training import render_mpijob
from tests.support.kube_apiserver import REGION, Identities, KubeApiServer, eks_session
from tests.support.kube_apiserver.fixtures import identities_fixture, server_fixture  # noqa: F401 (fixtures)
from tests.support.kube_apiserver.platform import ADMIN_ROLE_ARN
from tests.support.kube_apiserver.schemas import target_kubernetes_version

CONFIG = ManifestConfig()
V1 = ServingVersion("churn", "churn", 1, "s3://a/models/churn/runs/r1/", "a" * 64, replicas=2)
DEPLOYMENTS = "/apis/apps/v1/namespaces/ml-serving/deployments"
SERVICES = "/api/v1/namespaces/ml-serving/services"
MPIJOBS = "/apis/kubeflow.org/v2beta1/namespaces/ml-training/mpijobs"


@pytest.fixture
def token(server: KubeApiServer, identities: Identities) -> str:
    return eks_token(eks_session(identities), server.api.cluster_name, REGION)


def call(
    server: KubeApiServer,
    token: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
) -> requests.Response:
    return requests.request(
        method,
        server.url + path,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        data=json.dumps(body) if body is not None else None,
        params=params,
        timeout=5,
    )


def strict(server: KubeApiServer, token: str, method: str, path: str, body: Any) -> requests.Response:
    return call(server, token, method, path, body, params={"fieldValidation": "Strict"})


# -- who may call ---------------------------------------------------------------------------------


def test_the_schemas_are_those_of_the_kubernetes_version_terraform_deploys(server: KubeApiServer) -> None:
    assert target_kubernetes_version() == server.api.schemas.kubernetes_version == "1.31"


def test_the_eks_token_of_the_control_plane_role_is_accepted(server: KubeApiServer, token: str) -> None:
    assert call(server, token, "GET", SERVICES).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer not-a-token", "Bearer k8s-aws-v1.aHR0cHM6Ly9leGFtcGxlLmNvbS8", "Basic dXNlcjpwYXNz"],
)
def test_anything_but_an_eks_token_is_unauthorized(server: KubeApiServer, authorization: str) -> None:
    response = requests.get(server.url + SERVICES, headers={"Authorization": authorization}, timeout=5)
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    }  # fmt: skip


def test_a_token_for_another_cluster_is_unauthorized(server: KubeApiServer, identities: Identities) -> None:
    other = eks_token(eks_session(identities), "someone-elses-cluster", REGION)
    assert call(server, other, "GET", SERVICES).status_code == 401


def test_a_token_older_than_15_minutes_is_unauthorized(server: KubeApiServer, token: str) -> None:
    server.advance_clock(14 * 60)
    assert call(server, token, "GET", SERVICES).status_code == 200
    server.advance_clock(2 * 60)
    assert call(server, token, "GET", SERVICES).status_code == 401


def test_a_role_without_an_access_entry_is_unauthorized(server: KubeApiServer, identities: Identities) -> None:
    session = eks_session(identities, "arn:aws:iam::123456789012:role/not-mapped", key="ASIANOTMAPPED")
    assert call(server, eks_token(session, server.api.cluster_name, REGION), "GET", SERVICES).status_code == 401


def test_what_the_chart_does_not_grant_is_forbidden_with_the_real_status(server: KubeApiServer, token: str) -> None:
    response = call(server, token, "DELETE", f"{SERVICES}/churn")
    assert response.status_code == 403
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'services "churn" is forbidden: User "arn:aws:sts::123456789012:assumed-role/mlcp-ci-functions/'
        'mlcp-ci-lambda" cannot delete resource "services" in API group "" in the namespace "ml-serving"',
        "reason": "Forbidden", "details": {"name": "churn", "kind": "services"}, "code": 403,
    }  # fmt: skip
    assert call(server, token, "GET", "/api/v1/namespaces/kube-system/configmaps").status_code == 403
    assert call(server, token, "GET", MPIJOBS.replace("ml-training", "ml-serving")).status_code == 403


def test_an_admin_access_entry_may_do_anything(server: KubeApiServer, identities: Identities) -> None:
    admin = eks_token(eks_session(identities, ADMIN_ROLE_ARN, key="ASIAADMIN"), server.api.cluster_name, REGION)
    assert call(server, admin, "GET", "/api/v1/namespaces/kube-system/configmaps").status_code == 200


# -- strict decoding and validation ---------------------------------------------------------------


def test_an_unknown_field_is_a_strict_decoding_error_naming_its_path(server: KubeApiServer, token: str) -> None:
    body = render_deployment(V1, CONFIG)
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    body["spec"]["strategyy"] = {}
    response = strict(server, token, "POST", DEPLOYMENTS, body)
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    assert response.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagePullPolicyy", unknown field "spec.strategyy"'
    )  # in the order of the document, as the decoder meets them
    assert server.api.store.get(("apps", "deployments", "ml-serving", "churn-v1")) is None


def test_without_strict_validation_an_unknown_field_is_dropped_with_a_warning(
    server: KubeApiServer, token: str
) -> None:
    body = render_deployment(V1, CONFIG)
    body["spec"]["strategyy"] = {}
    response = call(server, token, "POST", DEPLOYMENTS, body)
    assert response.status_code == 201
    assert response.headers["Warning"] == '299 - "unknown field \\"spec.strategyy\\""'
    assert "strategyy" not in response.json()["spec"]


def test_a_custom_resource_is_decoded_against_its_vendored_crd(server: KubeApiServer, identities: Identities) -> None:
    spec = TrainingJobSpec("churn-v1-0123456789ab", "churn", "s3://d/datasets/churn/v1/data.csv", "s3://a/m/")
    body = render_mpijob(spec, CONFIG)
    body["spec"]["slotsPerWorkr"] = 1
    token = eks_token(eks_session(identities), server.api.cluster_name, REGION)
    response = strict(server, token, "POST", MPIJOBS, body)
    assert response.status_code == 400
    assert 'unknown field "spec.slotsPerWorkr"' in response.json()["message"]
    del body["spec"]["slotsPerWorkr"]
    body["spec"]["slotsPerWorker"] = "one"
    response = strict(server, token, "POST", MPIJOBS, body)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec.slotsPerWorker"


def test_an_invalid_value_is_422_with_each_cause_and_its_field(server: KubeApiServer, token: str) -> None:
    body = render_deployment(V1, CONFIG)
    del body["spec"]["template"]["spec"]["containers"][0]["name"]
    body["spec"]["replicas"] = "two"
    response = strict(server, token, "POST", DEPLOYMENTS, body)
    assert response.status_code == 422
    status = response.json()
    assert (status["reason"], status["details"]["kind"], status["details"]["group"]) == (
        "Invalid",
        "Deployment",
        "apps",
    )
    assert status["message"].startswith('Deployment.apps "churn-v1" is invalid: [')
    assert {(c["field"], c["reason"]) for c in status["details"]["causes"]} == {
        ("spec.replicas", "FieldValueInvalid"),
        ("spec.template.spec.containers[0].name", "FieldValueRequired"),
    }


def test_creating_twice_and_reading_nothing_answer_as_the_api_server_does(server: KubeApiServer, token: str) -> None:
    assert strict(server, token, "POST", SERVICES, render_service("churn", 1, CONFIG)).status_code == 201
    again = strict(server, token, "POST", SERVICES, render_service("churn", 1, CONFIG))
    assert again.status_code == 409
    assert again.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'services "churn" already exists', "reason": "AlreadyExists",
        "details": {"name": "churn", "kind": "services"}, "code": 409,
    }  # fmt: skip
    missing = call(server, token, "GET", f"{DEPLOYMENTS}/churn-v9")
    assert missing.status_code == 404
    assert missing.json()["message"] == 'deployments.apps "churn-v9" not found'
    assert missing.json()["details"] == {"name": "churn-v9", "group": "apps", "kind": "deployments"}
    unserved = call(server, token, "GET", "/apis/kubeflow.org/v1/namespaces/ml-training/mpijobs/x")
    assert (unserved.status_code, unserved.text) == (404, "404 page not found\n")


def test_a_namespace_that_does_not_exist_is_named(server: KubeApiServer, identities: Identities) -> None:
    admin = eks_token(eks_session(identities, ADMIN_ROLE_ARN, key="ASIAADMIN"), server.api.cluster_name, REGION)
    body = render_service("churn", 1, CONFIG)
    del body["metadata"]["namespace"]
    response = strict(server, admin, "POST", "/api/v1/namespaces/nowhere/services", body)
    assert response.status_code == 404
    assert response.json()["details"] == {"name": "nowhere", "kind": "namespaces"}


# -- updates and patches -------------------------------------------------------------------------


@pytest.fixture
def deployment(server: KubeApiServer, token: str) -> dict[str, Any]:
    body = render_deployment(V1, CONFIG)
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    response = strict(server, token, "POST", DEPLOYMENTS, body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _env(obj: dict[str, Any]) -> list[dict[str, str]]:
    return obj["spec"]["template"]["spec"]["containers"][0]["env"]


def test_a_strategic_merge_patch_merges_lists_by_their_merge_key(
    server: KubeApiServer, token: str, deployment: dict[str, Any]
) -> None:
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "model-server", "env": [{"name": "B", "value": "3"}]}]}}}
    }
    response = call(server, token, "PATCH", f"{DEPLOYMENTS}/churn-v1", patch,
                    content_type="application/strategic-merge-patch+json")  # fmt: skip
    assert response.status_code == 200, response.text
    assert _env(response.json()) == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert response.json()["metadata"]["generation"] == 2
    assert int(response.json()["metadata"]["resourceVersion"]) > int(deployment["metadata"]["resourceVersion"])


def test_a_json_merge_patch_replaces_lists(server: KubeApiServer, token: str, deployment: dict[str, Any]) -> None:
    containers = copy.deepcopy(deployment["spec"]["template"]["spec"]["containers"])
    containers[0]["env"] = [{"name": "B", "value": "3"}]
    patch = {"spec": {"template": {"spec": {"containers": containers}}}}
    response = call(
        server, token, "PATCH", f"{DEPLOYMENTS}/churn-v1", patch, content_type="application/merge-patch+json"
    )
    assert response.status_code == 200, response.text
    assert _env(response.json()) == [{"name": "B", "value": "3"}]


def test_a_json_patch_applies_its_operations_in_order(
    server: KubeApiServer, token: str, deployment: dict[str, Any]
) -> None:
    env = "/spec/template/spec/containers/0/env"
    ops = [
        {"op": "test", "path": f"{env}/0/name", "value": "A"},
        {"op": "remove", "path": f"{env}/0"},
        {"op": "add", "path": f"{env}/-", "value": {"name": "C", "value": "4"}},
    ]
    response = call(server, token, "PATCH", f"{DEPLOYMENTS}/churn-v1", ops, content_type="application/json-patch+json")
    assert response.status_code == 200, response.text
    assert _env(response.json()) == [{"name": "B", "value": "2"}, {"name": "C", "value": "4"}]
    failing = [{"op": "test", "path": f"{env}/0/name", "value": "A"}]
    response = call(server, token, "PATCH", f"{DEPLOYMENTS}/churn-v1", failing,
                    content_type="application/json-patch+json")  # fmt: skip
    assert response.status_code == 422


def test_a_custom_resource_takes_no_strategic_merge_patch(server: KubeApiServer, token: str) -> None:
    spec = TrainingJobSpec("churn-v1-0123456789ab", "churn", "s3://d/datasets/churn/v1/data.csv", "s3://a/m/")
    server.api.seed({**render_mpijob(spec, CONFIG), "metadata": {"name": spec.run_id, "namespace": "ml-training"}})
    response = call(server, token, "PATCH", f"{MPIJOBS}/{spec.run_id}", {"metadata": {"labels": {"a": "b"}}},
                    content_type="application/strategic-merge-patch+json")  # fmt: skip
    assert response.status_code in (403, 415)  # the chart grants no patch on MPIJobs: RBAC answers first


def test_a_stale_resource_version_is_a_conflict(server: KubeApiServer, token: str, deployment: dict[str, Any]) -> None:
    first = copy.deepcopy(deployment)
    _env(first)[0]["value"] = "changed"
    assert strict(server, token, "PUT", f"{DEPLOYMENTS}/churn-v1", first).status_code == 200
    stale = copy.deepcopy(deployment)
    _env(stale)[1]["value"] = "lost update"
    response = strict(server, token, "PUT", f"{DEPLOYMENTS}/churn-v1", stale)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert response.json()["message"] == (
        'Operation cannot be fulfilled on deployments.apps "churn-v1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_an_immutable_field_cannot_change(server: KubeApiServer, token: str, deployment: dict[str, Any]) -> None:
    changed = copy.deepcopy(deployment)
    changed["spec"]["selector"]["matchLabels"]["extra"] = "x"
    changed["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    response = strict(server, token, "PUT", f"{DEPLOYMENTS}/churn-v1", changed)
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "field is immutable", "field": "spec.selector"}
    ]


def test_a_write_that_changes_nothing_keeps_the_resource_version(
    server: KubeApiServer, token: str, deployment: dict[str, Any]
) -> None:
    response = strict(server, token, "PUT", f"{DEPLOYMENTS}/churn-v1", deployment)
    assert response.status_code == 200
    assert response.json()["metadata"]["resourceVersion"] == deployment["metadata"]["resourceVersion"]


def test_the_scale_subresource_reads_and_writes_replicas(
    server: KubeApiServer, token: str, deployment: dict[str, Any]
) -> None:
    scale = call(server, token, "GET", f"{DEPLOYMENTS}/churn-v1/scale").json()
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 2)
    response = call(server, token, "PATCH", f"{DEPLOYMENTS}/churn-v1/scale", {"spec": {"replicas": 4}},
                    content_type="application/strategic-merge-patch+json")  # fmt: skip
    assert response.json()["spec"]["replicas"] == 4
    assert call(server, token, "GET", f"{DEPLOYMENTS}/churn-v1").json()["spec"]["replicas"] == 4


def test_a_list_filters_by_label_selector(server: KubeApiServer, token: str, deployment: dict[str, Any]) -> None:
    listed = call(server, token, "GET", DEPLOYMENTS, params={"labelSelector": "app.kubernetes.io/name=churn"}).json()
    assert listed["kind"] == "DeploymentList" and [i["metadata"]["name"] for i in listed["items"]] == ["churn-v1"]
    assert call(server, token, "GET", DEPLOYMENTS, params={"labelSelector": "nope=1"}).json()["items"] == []


# -- watch -----------------------------------------------------------------------------------------


def test_a_watch_streams_the_current_objects_then_changes_until_its_timeout(
    server: KubeApiServer, identities: Identities
) -> None:
    from kubernetes import watch
    from kubernetes.client import CoreV1Api

    from tests.support.kube_apiserver import eks_client

    core = CoreV1Api(eks_client(server, eks_session(identities)))
    admin = eks_token(eks_session(identities, ADMIN_ROLE_ARN, key="ASIAADMIN"), server.api.cluster_name, REGION)
    assert strict(server, admin, "POST", SERVICES, render_service("churn", 1, CONFIG)).status_code == 201

    def write_later() -> None:
        time.sleep(0.3)
        body = render_service("churn", 1, CONFIG, preview=True)
        assert strict(server, admin, "POST", SERVICES, body).status_code == 201
        assert call(server, admin, "DELETE", f"{SERVICES}/churn").status_code == 200

    threading.Thread(target=write_later, daemon=True).start()
    started = time.monotonic()
    events = [
        (event["type"], event["object"].metadata.name)
        for event in watch.Watch().stream(core.list_namespaced_service, "ml-serving", timeout_seconds=1)
    ]
    assert events == [("ADDED", "churn"), ("ADDED", "churn-preview"), ("DELETED", "churn")]
    assert 0.9 < time.monotonic() - started < 3


def test_a_watch_the_chart_does_not_grant_is_forbidden(server: KubeApiServer, token: str) -> None:
    hpas = "/apis/autoscaling/v2/namespaces/ml-serving/horizontalpodautoscalers"
    response = call(server, token, "GET", hpas, params={"watch": "true", "timeoutSeconds": "1"})
    assert response.status_code == 403
    assert 'cannot watch resource "horizontalpodautoscalers"' in response.json()["message"]


# -- what the API server checks beyond the schema ---------------------------------------------------


def test_names_labels_and_quantities_are_checked_as_the_api_server_does(server: KubeApiServer, token: str) -> None:
    body = render_deployment(V1, CONFIG)
    body["metadata"]["name"] = "Churn_V1"
    body["metadata"]["labels"]["mlcp.dev/model"] = "m" * 64
    body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2 cores"
    response = strict(server, token, "POST", DEPLOYMENTS, body)
    assert response.status_code == 422
    assert {c["field"] for c in response.json()["details"]["causes"]} == {
        "metadata.name",
        "metadata.labels",
        "spec.template.metadata.labels",  # the renderer shares one labels dict between the two
        "spec.template.spec.containers[0].resources.limits[cpu]",
    }
    service = render_service("churn", 1, CONFIG)
    service["metadata"]["name"] = "1churn"  # a Service name is a DNS-1035 label: it starts with a letter
    response = strict(server, token, "POST", SERVICES, service)
    assert response.status_code == 422
    assert "DNS-1035" in response.json()["message"]
