"""The embedded platform on the EKS adapters: a `ClusterFactory` (control/local/external_clusters.py)
that starts the checking API server with its controllers, the process kubelet and the cluster's
network, and gives the runtime `KubernetesCluster` (the code that runs in AWS) as both its
training and its serving cluster, reached with the EKS token of the control plane's role.

    EmbeddedRuntime(state_dir, clusters=eks_clusters).start()
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from control.adapters.kubernetes_cluster import KubernetesCluster
from control.local.external_clusters import ClusterContext
from control.local.provision import REPO
from tests.support.kube_apiserver import Identities, eks_client, eks_session, running
from tests.support.kube_apiserver.controllers import Controllers
from tests.support.kube_apiserver.kubelet import ProcessKubelet
from tests.support.kube_apiserver.network import ClusterNetwork, PodDiscovery, ServiceProxies
from tests.support.kube_apiserver.server import KubeApiServer

SERVING_NAMESPACE = "ml-serving"
TRAINING_NAMESPACE = "ml-training"


class EksClusters:
    """EmbeddedClusters through the EKS adapters against the test API server."""

    def __init__(self, context: ClusterContext, *, grace_seconds: float = 10.0) -> None:
        self._stack = ExitStack()
        identities = Identities()
        self.server: KubeApiServer = self._stack.enter_context(running(identities))
        self.kubelet = ProcessKubelet(
            context.state_dir / "kubelet",
            repo_root=REPO,
            env=context.env,
            checkpoints_dir=context.state_dir / "cluster" / "checkpoints",
            grace_seconds=grace_seconds,
        )
        self.controllers = Controllers(self.server.api, self.kubelet).start()
        self.network = ClusterNetwork(
            ServiceProxies(self.server.api, SERVING_NAMESPACE),
            [
                PodDiscovery(self.server.api, self.kubelet, SERVING_NAMESPACE, context.serving_targets_file),
                PodDiscovery(self.server.api, self.kubelet, TRAINING_NAMESPACE, context.training_targets_file),
            ],
        ).start()
        self.cluster = KubernetesCluster(eks_client(self.server, eks_session(identities)))
        self.training = self.cluster
        self.serving = self.cluster

    @property
    def checkpoints_dir(self) -> Path:
        return self.kubelet.checkpoints_dir

    def service_urls(self) -> dict[str, str]:
        return self.network.proxies.urls()

    def fault(self, deployment_name: str, error_ratio: float, latency_ms: float = 0.0) -> None:
        if not self.kubelet.fault(f"{deployment_name}-", error_ratio, latency_ms):
            raise LookupError(f"no running model server of {deployment_name}")

    def training_log_paths(self, job_name: str) -> tuple[Path, Path]:
        """The launcher's log (horovodrun writes both streams there, rank-prefixed)."""
        for local in self.kubelet.pods.values():
            if local.job == job_name and local.rank is None:
                return local.log, local.log
        log = self.kubelet.state_dir / "logs" / f"{TRAINING_NAMESPACE}-{job_name}-launcher-0.log"
        return log, log

    def stop(self) -> None:
        self.network.stop()
        self.controllers.stop()
        self.kubelet.stop_all()
        self._stack.close()


def eks_clusters(context: ClusterContext) -> EksClusters:
    return EksClusters(context)
