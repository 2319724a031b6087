"""A Kubernetes API test server that checks what a real (EKS) one checks, for the EKS adapters.

- `schemas`: the strict schemas of the Kubernetes version Terraform targets, and the vendored CRDs
- `patches`: strategic merge patch (by the schemas' merge keys and strategies), JSON merge patch, JSON patch
- `auth`: the EKS token (SigV4 recomputed), Terraform's access entries, the chart's RBAC
- `api`: request handling with kube-apiserver's answers; `store`: objects, resourceVersions, a change log
- `server`: HTTP, a request log, injected faults; `running()` starts one for a test
- `controllers`: Deployment → ReplicaSet → Pods, Service → Endpoints, Job → Pod, MPIJob → launcher
  and workers; `kubelet`: pods as local processes (the model server, horovodrun, the load tester);
  `network`: a proxy per Service and Prometheus file_sd from the pods; `embedded`: the embedded
  platform's clusters through the EKS adapters

Not checked (a real kube-apiserver does): admission webhooks and Pod Security admission,
ResourceQuota/LimitRange, scheduling (node selectors, tolerations, topology spread and resources
are stored, never placed), server-side apply and managedFields, finalizers and foreground
deletion, field selectors, list pagination (limit/continue), the HPA controller (stored only),
PDBs during deletion (no evictions), probes other than an HTTP readiness probe on /ping, pod
restarts (restartPolicy, a Job's backoffLimit and the MPIJob's runPolicy.backoffLimit: one try),
rolling updates with surge (a new template's ReplicaSet replaces the old at once), NetworkPolicy
and Ingress (stored; its ALB weights split the Service proxy of its name, nothing else), and watch bookmarks.

`eks_session` and `eks_client` give a test what a Lambda has: a role's AWS session and the
adapter's own ApiClient (control/adapters/kubernetes_eks.py) pointed at the server.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
from kubernetes.client import ApiClient

from control.adapters.kubernetes_eks import TOKEN_REFRESH_SECONDS, api_client_for, eks_token
from tests.support.kube_apiserver.auth import Identities
from tests.support.kube_apiserver.platform import ACCOUNT, CONTROL_PLANE_ROLE_ARN
from tests.support.kube_apiserver.server import CLUSTER_NAME, KubeApiServer, running

REGION = "eu-west-1"
CA_DATA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def eks_session(identities: Identities, role_arn: str = CONTROL_PLANE_ROLE_ARN, *, key: str = "ASIACONTROLPLANE"):  # noqa: ANN201
    """A boto3 session for `role_arn` (as the Lambda's assumed role), registered with the server's STS."""
    role = role_arn.rsplit("/", 1)[-1]
    secret = f"secret-of-{key}"
    identities.register(key, secret, f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/mlcp-ci-lambda")
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)


def eks_client(
    server: KubeApiServer,
    session: boto3.session.Session,
    *,
    cluster_name: str = CLUSTER_NAME,
    refresh_seconds: float = TOKEN_REFRESH_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> ApiClient:
    """The adapter's own EKS ApiClient, with the server's URL in place of the cluster endpoint."""
    return api_client_for(
        server.url,
        CA_DATA,
        lambda: eks_token(session, cluster_name, REGION),
        refresh_seconds=refresh_seconds,
        clock=clock,
    )


class VirtualClock:
    """One clock for a test that moves time: the client's token age (monotonic), the signer's
    X-Amz-Date (botocore) and the server's idea of now all move together with `advance`."""

    def __init__(self, server: KubeApiServer, monkeypatch: Any) -> None:
        import botocore.auth
        import botocore.compat

        self.offset = 0.0
        self._server = server
        real = botocore.compat.get_current_datetime
        monkeypatch.setattr(
            botocore.auth, "get_current_datetime", lambda *a, **k: real(*a, **k) + timedelta(seconds=self.offset)
        )

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self._server.advance_clock(seconds)


__all__ = [
    "CLUSTER_NAME",
    "REGION",
    "Identities",
    "KubeApiServer",
    "VirtualClock",
    "eks_client",
    "eks_session",
    "running",
]
