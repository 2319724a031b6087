"""Kubernetes API failures → the control plane's error taxonomy."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from control.adapters.kubernetes_errors import translate
from control.errors import Conflict, DependencyError, InvalidInput, NotFound, TransientError


def api_error(status: int, body: object = None, headers: dict | None = None) -> ApiException:
    exc = ApiException(status=status, reason="reason")
    exc.body = body if isinstance(body, str) or body is None else json.dumps(body)
    exc.headers = headers
    return exc


def status_body(reason: str, details: dict | None = None, message: str = "msg") -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
            "message": message, "details": details or {}}  # fmt: skip


def test_throttling_carries_retry_after() -> None:
    error = translate(api_error(429, status_body("TooManyRequests"), {"Retry-After": "7"}), "MPIJob a/b")
    assert isinstance(error, TransientError) and error.retryable and error.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    assert isinstance(translate(api_error(status, "oops"), "x"), TransientError)


def test_timeouts_and_refused_connections_are_transient() -> None:
    assert isinstance(translate(urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"), "x"), TransientError)
    assert isinstance(translate(urllib3.exceptions.MaxRetryError(None, "/"), "x"), TransientError)


def test_a_missing_object_is_not_found_but_a_missing_crd_names_mpi_operator() -> None:
    missing = api_error(404, status_body("NotFound", {"name": "run-1", "kind": "mpijobs"}))
    assert isinstance(translate(missing, "MPIJob ml-training/run-1", custom_resource=True), NotFound)
    no_crd = translate(api_error(404, "404 page not found"), "MPIJob ml-training/run-1", custom_resource=True)
    assert isinstance(no_crd, DependencyError) and "mpi-operator v0.8.0" in no_crd.message
    no_resource = api_error(404, status_body("NotFound", {"group": "kubeflow.org", "kind": "mpijobs"}))
    assert isinstance(translate(no_resource, "x", custom_resource=True), DependencyError)


def test_a_missing_namespace_is_a_dependency_error() -> None:
    error = translate(api_error(404, status_body("NotFound", {"name": "ml-training", "kind": "namespaces"})), "x")
    assert isinstance(error, DependencyError) and "ml-training" in error.message


def test_other_client_errors_are_fatal() -> None:
    assert isinstance(translate(api_error(409, status_body("AlreadyExists")), "x"), Conflict)
    invalid = translate(api_error(422, status_body("Invalid", message="spec.replicas: Invalid value")), "x")
    assert isinstance(invalid, InvalidInput) and not invalid.retryable and "spec.replicas" in invalid.message
    assert isinstance(translate(api_error(403, status_body("Forbidden")), "x"), DependencyError)
