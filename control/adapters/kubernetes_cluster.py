"""The Kubernetes adapter: MPIJobs for training (the TrainingCluster port) and the blue-green
serving objects, through the `kubernetes` client on an injected ApiClient.

Every API failure leaves as the control plane's own error (see kubernetes_errors).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    AutoscalingV2Api,
    BatchV1Api,
    CoreV1Api,
    CustomObjectsApi,
    NetworkingV1Api,
    PolicyV1Api,
)

from control.adapters.kubernetes_errors import translate
from control.domain.serving import DeploymentReadiness
from control.domain.training import JobStatus
from control.errors import (
    Conflict,
    ControlError,
    DependencyError,
    NotFound,
    PreconditionFailed,
    TransientError,
)
from control.manifests.serving import VPA_GROUP, VPA_PLURAL, VPA_VERSION
from control.manifests.status import autoscaling_status, mpijob_status
from control.manifests.training import GROUP, PLURAL, VERSION
from control.settings import Settings

SPEC_HASH_ANNOTATION = "mlcp.dev/spec-sha256"
DEFAULT_TIMEOUT = (3.05, 15.0)  # connect, read (seconds)
T = TypeVar("T")


def spec_hash(manifest: Mapping[str, Any]) -> str:
    """Identity of what was asked for: the spec and labels, not server-added fields."""
    relevant = {"spec": manifest.get("spec"), "labels": (manifest.get("metadata") or {}).get("labels")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class KubernetesCluster:
    """Implements TrainingCluster with MPIJobs, plus the serving operations a rollout needs."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        training_namespace: str = "ml-training",
        serving_namespace: str = "ml-serving",
        request_timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._core = CoreV1Api(api_client)
        self._apps = AppsV1Api(api_client)
        self._policy = PolicyV1Api(api_client)
        self._autoscaling = AutoscalingV2Api(api_client)
        self._networking = NetworkingV1Api(api_client)
        self._batch = BatchV1Api(api_client)
        self._training_namespace = training_namespace
        self._serving_namespace = serving_namespace
        self._timeout = request_timeout

    @classmethod
    def for_settings(cls, settings: Settings) -> KubernetesCluster:
        """The EKS cluster named in settings, reached with the Lambda role's EKS token."""
        from control.adapters.kubernetes_eks import eks_api_client

        if not settings.eks_cluster_name:
            raise DependencyError("CONTROL_EKS_CLUSTER_NAME is not set (needed with CONTROL_CLUSTER=eks)")
        return cls(
            eks_api_client(settings.eks_cluster_name, settings.region),
            training_namespace=settings.training_namespace,
            serving_namespace=settings.serving_namespace,
        )

    def _call(self, what: str, fn: Callable[..., T], *args: Any, custom_resource: bool = False, **kwargs: Any) -> T:
        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except ControlError:
            raise
        except Exception as exc:  # every client failure is translated once, here
            raise translate(exc, what, custom_resource=custom_resource) from exc

    # -- training -------------------------------------------------------------------------

    def _mpijob(self, name: str) -> str:
        return f"MPIJob {self._training_namespace}/{name}"

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        body = copy.deepcopy(manifest)
        body["metadata"]["namespace"] = self._training_namespace
        wanted = spec_hash(manifest)
        body["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = wanted
        try:
            self._call(
                self._mpijob(name),
                self._custom.create_namespaced_custom_object,
                GROUP, VERSION, self._training_namespace, PLURAL, body,
                custom_resource=True,
            )  # fmt: skip
            return
        except Conflict:
            existing = self._get_mpijob(name)
        metadata = existing.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            raise TransientError(f"{self._mpijob(name)} is being deleted; submit again once it is gone")
        if (metadata.get("annotations") or {}).get(SPEC_HASH_ANNOTATION) != wanted:
            raise Conflict(f"{self._mpijob(name)} already exists with a different spec")

    def _get_mpijob(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self._call(
            self._mpijob(name),
            self._custom.get_namespaced_custom_object,
            GROUP, VERSION, self._training_namespace, PLURAL, name,
            custom_resource=True,
        )  # fmt: skip
        return obj

    def training_job_status(self, name: str) -> JobStatus:
        return mpijob_status(name, self._get_mpijob(name))

    def delete_training_job(self, name: str) -> None:
        try:
            self._call(
                self._mpijob(name),
                self._custom.delete_namespaced_custom_object,
                GROUP, VERSION, self._training_namespace, PLURAL, name,
                propagation_policy="Background",
                custom_resource=True,
            )  # fmt: skip
        except NotFound:
            return

    # -- serving --------------------------------------------------------------------------

    def _serving(self, kind: str, name: str) -> str:
        return f"{kind} {self._serving_namespace}/{name}"

    def _operations(self, kind: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        """create, patch and delete for the kinds the serving renderers produce."""
        table: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
            "Deployment": (
                self._apps.create_namespaced_deployment,
                self._apps.patch_namespaced_deployment,
                self._apps.delete_namespaced_deployment,
            ),
            "Service": (
                self._core.create_namespaced_service,
                self._core.patch_namespaced_service,
                self._core.delete_namespaced_service,
            ),
            "PodDisruptionBudget": (
                self._policy.create_namespaced_pod_disruption_budget,
                self._policy.patch_namespaced_pod_disruption_budget,
                self._policy.delete_namespaced_pod_disruption_budget,
            ),
            "HorizontalPodAutoscaler": (
                self._autoscaling.create_namespaced_horizontal_pod_autoscaler,
                self._autoscaling.patch_namespaced_horizontal_pod_autoscaler,
                self._autoscaling.delete_namespaced_horizontal_pod_autoscaler,
            ),
            "NetworkPolicy": (
                self._networking.create_namespaced_network_policy,
                self._networking.patch_namespaced_network_policy,
                self._networking.delete_namespaced_network_policy,
            ),
            "Ingress": (
                self._networking.create_namespaced_ingress,
                self._networking.patch_namespaced_ingress,
                self._networking.delete_namespaced_ingress,
            ),
            "Job": (
                self._batch.create_namespaced_job,
                self._batch.patch_namespaced_job,
                self._batch.delete_namespaced_job,
            ),
            "VerticalPodAutoscaler": (
                lambda namespace, body, **kw: self._custom.create_namespaced_custom_object(
                    VPA_GROUP, VPA_VERSION, namespace, VPA_PLURAL, body, **kw
                ),
                lambda name, namespace, body, **kw: self._custom.patch_namespaced_custom_object(
                    VPA_GROUP, VPA_VERSION, namespace, VPA_PLURAL, name, body, **kw
                ),
                lambda name, namespace, **kw: self._custom.delete_namespaced_custom_object(
                    VPA_GROUP, VPA_VERSION, namespace, VPA_PLURAL, name, **kw
                ),
            ),
        }
        if kind not in table:
            raise ValueError(f"the serving adapter does not apply {kind} objects")
        return table[kind]

    def apply(self, manifest: dict[str, Any]) -> None:
        """Create the object, or patch it to match. Two fields are left as they are on update:
        a Deployment's replicas (owned by scale/HPA) and a Service's selector (owned by the
        rollout, changed only by switch_service_selector)."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        create, patch, _ = self._operations(kind)
        body = copy.deepcopy(manifest)
        body["metadata"]["namespace"] = self._serving_namespace
        try:
            self._call(self._serving(kind, name), create, self._serving_namespace, body)
            return
        except Conflict:
            pass
        update = copy.deepcopy(body)
        if kind == "Deployment":
            update["spec"].pop("replicas", None)
        if kind == "Service":
            update["spec"].pop("selector", None)
        if kind == "Job":
            return  # a Job's pod template cannot change: the one that exists is the one asked for
        self._call(self._serving(kind, name), patch, name, self._serving_namespace, update)

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        if manifest.get("kind") != "Deployment":
            raise ValueError("apply_deployment takes a Deployment")
        self.apply(manifest)

    def scale_deployment(self, name: str, replicas: int) -> None:
        self._call(
            self._serving("Deployment", name),
            self._apps.patch_namespaced_deployment_scale,
            name, self._serving_namespace, {"spec": {"replicas": replicas}},
        )  # fmt: skip

    def deployment_readiness(self, name: str) -> DeploymentReadiness:
        obj = self._call(
            self._serving("Deployment", name),
            self._apps.read_namespaced_deployment,
            name,
            self._serving_namespace,
        )
        spec, status = obj.spec, obj.status
        return DeploymentReadiness(
            name=name,
            desired=spec.replicas if spec.replicas is not None else 1,
            ready=(status.ready_replicas or 0) if status else 0,
            updated=(status.updated_replicas or 0) if status else 0,
            available=(status.available_replicas or 0) if status else 0,
            observed=bool(status) and (status.observed_generation or 0) >= (obj.metadata.generation or 0),
        )

    def service_selector(self, name: str) -> dict[str, str]:
        obj = self._call(
            self._serving("Service", name), self._core.read_namespaced_service, name, self._serving_namespace
        )
        return dict(obj.spec.selector or {})

    def switch_service_selector(self, name: str, selector: Mapping[str, str]) -> bool:
        """Point the Service at `selector`. Returns False, writing nothing, if it already does.

        The patch carries the resourceVersion read, so two actors cannot both switch on a stale
        view: the loser gets PreconditionFailed (retryable) and re-reads."""
        what = self._serving("Service", name)
        obj = self._call(what, self._core.read_namespaced_service, name, self._serving_namespace)
        current = dict(obj.spec.selector or {})
        if current == dict(selector):
            return False
        patch_selector: dict[str, str | None] = {key: None for key in current if key not in selector}
        patch_selector.update(selector)
        body = {
            "metadata": {"resourceVersion": obj.metadata.resource_version},
            "spec": {"selector": patch_selector},
        }
        try:
            self._call(what, self._core.patch_namespaced_service, name, self._serving_namespace, body)
        except Conflict as exc:
            raise PreconditionFailed(f"{what} changed while switching its selector; re-read and retry") from exc
        return True

    def delete_deployment(self, name: str) -> None:
        """Delete one version: its Deployment and the PDB, HPA and VPA of the same name. Idempotent."""
        for kind in ("VerticalPodAutoscaler", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Deployment"):
            _, _, delete = self._operations(kind)
            try:
                self._call(self._serving(kind, name), delete, name, self._serving_namespace)
            except NotFound:
                continue

    def autoscaling(self, name: str) -> dict[str, Any]:
        hpa: dict[str, Any] | None = None
        vpa: dict[str, Any] | None = None
        read_hpa = self._autoscaling.read_namespaced_horizontal_pod_autoscaler
        read_vpa = self._custom.get_namespaced_custom_object
        with contextlib.suppress(NotFound):
            found = self._call(self._serving("HorizontalPodAutoscaler", name), read_hpa, name, self._serving_namespace)
            hpa = self._autoscaling.api_client.sanitize_for_serialization(found)
        with contextlib.suppress(NotFound):
            vpa = self._call(
                self._serving("VerticalPodAutoscaler", name),
                read_vpa, VPA_GROUP, VPA_VERSION, self._serving_namespace, VPA_PLURAL, name,
            )  # fmt: skip
        return autoscaling_status(hpa, vpa)

    def job_exists(self, name: str) -> bool:
        try:
            self._call(self._serving("Job", name), self._batch.read_namespaced_job, name, self._serving_namespace)
        except NotFound:
            return False
        return True

    def delete(self, kind: str, name: str) -> None:
        _, _, delete = self._operations(kind)
        # A Job's pods go with it (the API's default for Jobs leaves them orphaned).
        options: dict[str, Any] = {"body": {"propagationPolicy": "Background"}} if kind == "Job" else {}
        try:
            self._call(self._serving(kind, name), delete, name, self._serving_namespace, **options)
        except NotFound:
            return
