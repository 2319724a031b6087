"""The embedded platform on either serving cluster, for tests that run once per cluster: the local
clusters (LocalServing: model servers and routers as processes) or the EKS adapters
(`KubernetesCluster`) against the checking API server (tests/support/kube_apiserver).

A second embedded runtime sets process-wide state (the environment, the handlers' platform); a
`RolloutRuntime` keeps its own and puts it in place only inside `active()`, so tests of the same
module that use the session's runtime see theirs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLUSTERS = ("local", "eks")

# The kinds a deployment's companions are stored as in the checking API server (group, plural).
_API_RESOURCES = {
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "Deployment": ("apps", "deployments"),
    "Service": ("", "services"),
}


@dataclass
class RolloutRuntime:
    cluster: str
    runtime: Any
    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @contextmanager
    def active(self) -> Iterator[RolloutRuntime]:
        """This runtime's environment and platform for the handlers (and `current_platform()`)."""
        from chalicelib import runtime as handlers_runtime

        saved, platform = dict(os.environ), handlers_runtime._platform
        os.environ.clear()
        os.environ.update(self.environment)
        handlers_runtime.use_platform(self.runtime.platform)
        try:
            yield self
        finally:
            os.environ.clear()
            os.environ.update(saved)
            handlers_runtime.use_platform(platform)

    def endpoint(self, deployment: str) -> str:
        return str(self.runtime.deployment_endpoints()[deployment])

    def _logs(self) -> tuple[Path, str]:
        """The model servers' log folder and the prefix of a pod's log name in it."""
        if self.cluster == "eks":
            from tests.support.kube_apiserver.embedded import SERVING_NAMESPACE

            return self.runtime.clusters.kubelet.state_dir / "logs", f"{SERVING_NAMESPACE}-"
        return self.runtime.serving().state.logs, ""

    def server_logs(self, deployment_name: str) -> str:
        """What the model servers of one Deployment (a version) wrote."""
        folder, prefix = self._logs()
        paths = folder.glob(f"{prefix}{deployment_name}-*.log")
        return " ".join(path.read_text(errors="replace") for path in paths)

    def object_exists(self, kind: str, name: str) -> bool:
        """Whether the cluster holds the object (what `kubectl get` would show)."""
        if self.cluster == "eks":
            from tests.support.kube_apiserver.embedded import SERVING_NAMESPACE

            group, plural = _API_RESOURCES[kind]
            store = self.runtime.clusters.server.api.store
            return any(obj["metadata"]["name"] == name for obj in store.list(group, plural, SERVING_NAMESPACE))
        return bool(self.runtime.serving().state.object_path(kind, name).exists())


@contextmanager
def eks_runtime(state_dir: Path) -> Iterator[RolloutRuntime]:
    """A second embedded runtime on the EKS adapters; the process-wide state it sets is put back at
    once (and its own kept for `active()`)."""
    from chalicelib import runtime as handlers_runtime

    from control.local.runtime import EmbeddedRuntime
    from tests.support.kube_apiserver.embedded import eks_clusters

    saved, platform = dict(os.environ), handlers_runtime._platform

    def put_back() -> None:
        os.environ.clear()
        os.environ.update(saved)
        handlers_runtime.use_platform(platform)

    embedded = EmbeddedRuntime(state_dir, stage="eksfault", clusters=eks_clusters)
    try:
        embedded.start()
        runtime = RolloutRuntime("eks", embedded, dict(os.environ))
        put_back()
        yield runtime
    finally:
        put_back()
        embedded.stop()
