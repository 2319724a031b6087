"""Kubernetes API failures → the control plane's error taxonomy (raised `from` the cause)."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from control.errors import (
    Conflict,
    ControlError,
    DependencyError,
    InvalidInput,
    NotFound,
    TransientError,
)

MPI_OPERATOR_HINT = (
    "the MPIJob API (kubeflow.org/v2beta1) is not served by this cluster: install mpi-operator v0.8.0 "
    "(kubectl apply --server-side -f "
    "https://raw.githubusercontent.com/kubeflow/mpi-operator/v0.8.0/deploy/v2beta1/mpi-operator.yaml)"
)
DEFAULT_RETRY_AFTER = 1.0


def _status_body(exc: ApiException) -> dict[str, Any] | None:
    """The `Status` object the API server sends, or None for a bare '404 page not found'."""
    try:
        body = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("kind") == "Status" else None


def retry_after(exc: ApiException) -> float:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:  # an HTTP date: rare from the API server; retry soon
        return DEFAULT_RETRY_AFTER


def translate(exc: BaseException, what: str, *, custom_resource: bool = False) -> ControlError:
    """`what` names the object ("MPIJob ml-training/run-1"); `custom_resource` marks CRD paths."""
    if isinstance(exc, urllib3.exceptions.HTTPError | TimeoutError | ConnectionError):
        return TransientError(f"Kubernetes API unreachable or slow for {what}: {exc}")
    if not isinstance(exc, ApiException):
        return DependencyError(f"unexpected Kubernetes client failure for {what}: {exc}")
    status = exc.status or 0
    body = _status_body(exc)
    message = (body or {}).get("message") or exc.reason or "no message"
    if status == 429 or status >= 500 or status == 0:
        return TransientError(f"Kubernetes API {status} for {what}: {message}", retry_after=retry_after(exc))
    if status == 404:
        details = (body or {}).get("details") or {}
        if details.get("kind") == "namespaces":
            return DependencyError(f"namespace {details.get('name')!r} does not exist (apply workloads/k8s)")
        # A missing object names itself; an unserved API answers a bare 404 page (or a Status
        # without a name when the group exists but this resource does not).
        if custom_resource and (body is None or not details.get("name")):
            return DependencyError(MPI_OPERATOR_HINT)
        return NotFound(f"{what} not found")
    if status == 409:
        return Conflict(f"{what}: {message}")
    if status in (401, 403):
        return DependencyError(f"Kubernetes API refused {what} ({status}): {message}")
    return InvalidInput(f"Kubernetes API rejected {what} ({status}): {message}")
