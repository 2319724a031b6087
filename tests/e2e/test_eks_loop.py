"""The e2e loop through the EKS adapters: the embedded platform with `KubernetesCluster` as its
training and serving cluster, against the checking API server (tests/support/kube_apiserver):
S3 drop → Horovod (an MPIJob whose launcher runs horovodrun) → registry → blue-green (Deployments,
a Service switched by selector, the preview Job) → alert after promotion (the real Prometheus
scraping the pods through the PodMonitors' relabelings) → rollback to last-known-good.

It is tests/e2e/test_rollout_loop.py's loop (tests/support/rollout_loop.py) on this module's
platform, a second embedded runtime in the session: it gets its own stage, and the process-wide state the
runtime sets (the environment, the handlers' platform) is put back when the module is done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from control.adapters.kubernetes_cluster import KubernetesCluster
from tests.support.rollout_loop import alert_after_promotion_rolls_back_to_last_known_good

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def eks_embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from chalicelib import runtime as handlers_runtime

    from control.local.runtime import EmbeddedRuntime
    from tests.support.kube_apiserver.embedded import eks_clusters

    environment, handlers_platform = dict(os.environ), handlers_runtime._platform
    embedded = EmbeddedRuntime(tmp_path_factory.mktemp("eks-platform"), stage="eks", clusters=eks_clusters)
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        os.environ.clear()
        os.environ.update(environment)
        handlers_runtime.use_platform(handlers_platform)


@pytest.fixture(scope="module")
def endpoints(eks_embedded: Any) -> dict[str, Any]:
    return dict(eks_embedded.endpoints())


@pytest.fixture(scope="module")
def aws(endpoints: dict[str, Any]) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])

    return make


def test_the_loop_runs_through_the_eks_adapters(eks_embedded: Any, endpoints: dict[str, Any], aws: Any) -> None:
    assert isinstance(eks_embedded.platform.training, KubernetesCluster)
    assert isinstance(eks_embedded.platform.serving, KubernetesCluster)
    alert_after_promotion_rolls_back_to_last_known_good(eks_embedded, endpoints, aws)
    server = eks_embedded.clusters.server
    refused = [request for request, allowed in server.api.authorizations if not allowed]
    assert refused == [], f"the chart's RBAC refused: {refused[:5]}"
    assert server.api.store.list("kubeflow.org", "mpijobs", "ml-training"), "training ran as MPIJobs"
    deployments = [d["metadata"]["name"] for d in server.api.store.list("apps", "deployments", "ml-serving")]
    assert any(name.endswith("-v1") for name in deployments), deployments
