"""The REST resources the server answers: every kind the platform's adapters and manifests use."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.kube_apiserver.schemas import crd_plurals


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    custom: bool = False
    scale: bool = False  # serves the /scale subresource
    immutable: tuple[str, ...] = ()  # dotted paths that cannot change on update

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the API server names the resource in messages: deployments.apps, services, mpijobs.kubeflow.org."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILT_IN = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False),
    ResourceType("", "v1", "services", "Service", immutable=("spec.clusterIP", "spec.clusterIPs")),
    ResourceType("", "v1", "pods", "Pod"),
    ResourceType("", "v1", "configmaps", "ConfigMap"),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("", "v1", "endpoints", "Endpoints"),
    ResourceType("apps", "v1", "deployments", "Deployment", scale=True, immutable=("spec.selector",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", scale=True, immutable=("spec.selector",)),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ResourceType("batch", "v1", "jobs", "Job", immutable=("spec.selector", "spec.template", "spec.completions")),
)


def served_resources(*, with_crds: bool = True) -> dict[tuple[str, str, str], ResourceType]:
    """(group, version, plural) → its type; the vendored CRDs are served when `with_crds`."""
    table = {(r.group, r.version, r.plural): r for r in BUILT_IN}
    if with_crds:
        for (api_version, plural), (kind, scope) in crd_plurals().items():
            group, version = api_version.split("/")
            table[(group, version, plural)] = ResourceType(
                group, version, plural, kind, namespaced=scope == "Namespaced", custom=True
            )
    return table
