"""The Kubernetes adapter: MPIJobs for training (the TrainingCluster port) and the blue-green
serving objects, through the `kubernetes` client on an injected ApiClient.

Every API failure leaves as the control plane's own error (see kubernetes_errors).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
from kubernetes.client.exceptions import ApiException

from control.adapters.kubernetes_errors import retry_after, translate
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
from control.manifests.serving import VPA_GROUP, VPA_PLURAL, VPA_VERSION, weights_of_ingress
from control.manifests.status import autoscaling_status, mpijob_status
from control.manifests.training import GROUP, PLURAL, VERSION
from control.settings import Settings

SPEC_HASH_ANNOTATION = "mlcp.dev/spec-sha256"
DEFAULT_TIMEOUT = (3.05, 15.0)  # connect, read (seconds)
# Every write asks the API server to refuse unknown fields: its default (Warn) drops them silently.
STRICT: dict[str, Any] = {"field_validation": "Strict"}
UPDATE_ATTEMPTS = 3  # a replace that loses a resourceVersion race is re-read and retried this often
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often a call is retried on a transient API failure (429, 5xx, timeout) before the
    TransientError goes up, and how long to wait between tries: the server's Retry-After where it
    sends one, else exponential from `base_delay`, never more than `max_delay` (a Lambda has 30 s)."""

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, error: TransientError) -> float:
        backoff = self.base_delay * 2**attempt
        cause = error.__cause__
        if isinstance(cause, ApiException) and cause.headers and "Retry-After" in cause.headers:
            backoff = max(backoff, retry_after(cause))
        return min(backoff, self.max_delay)


def spec_hash(manifest: Mapping[str, Any]) -> str:
    """Identity of what was asked for: the spec and labels, not server-added fields."""
    relevant = {"spec": manifest.get("spec"), "labels": (manifest.get("metadata") or {}).get("labels")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def applied_hash(manifest: Mapping[str, Any]) -> str:
    """Identity of an applied serving object: everything the adapter owns (spec, labels and its
    own annotations, such as the ALB weights of an Ingress)."""
    metadata = manifest.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != SPEC_HASH_ANNOTATION}
    relevant = {"spec": manifest.get("spec"), "labels": metadata.get("labels"), "annotations": annotations}
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
        retry: RetryPolicy | None = None,
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
        self._retry = retry or RetryPolicy()

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
        """One API call, retried on throttling, server errors and timeouts (a create that did land
        before its answer was lost comes back as AlreadyExists, which every caller handles)."""
        for attempt in range(self._retry.attempts):
            try:
                return self._call_once(what, fn, *args, custom_resource=custom_resource, **kwargs)
            except TransientError as error:
                if attempt + 1 >= self._retry.attempts:
                    raise TransientError(
                        f"{error.message} (gave up after {self._retry.attempts} attempts)",
                        retry_after=error.retry_after,
                    ) from error
                self._retry.sleep(self._retry.delay(attempt, error))
        raise AssertionError("unreachable: RetryPolicy.attempts is at least 1")

    def _call_once(
        self, what: str, fn: Callable[..., T], *args: Any, custom_resource: bool = False, **kwargs: Any
    ) -> T:
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
                custom_resource=True, **STRICT,
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

    def _operations(
        self, kind: str
    ) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        """create, read, replace and delete for the kinds the serving renderers produce."""
        if kind == "VerticalPodAutoscaler":  # a custom resource: the custom objects API, by group and plural
            return self._vpa_operations()
        apis: dict[str, tuple[Any, str]] = {
            "Deployment": (self._apps, "deployment"),
            "Service": (self._core, "service"),
            "PodDisruptionBudget": (self._policy, "pod_disruption_budget"),
            "HorizontalPodAutoscaler": (self._autoscaling, "horizontal_pod_autoscaler"),
            "NetworkPolicy": (self._networking, "network_policy"),
            "Ingress": (self._networking, "ingress"),
            "Job": (self._batch, "job"),
        }
        if kind not in apis:
            raise ValueError(f"the serving adapter does not apply {kind} objects")
        api, noun = apis[kind]
        return (
            getattr(api, f"create_namespaced_{noun}"),
            getattr(api, f"read_namespaced_{noun}"),
            getattr(api, f"replace_namespaced_{noun}"),
            getattr(api, f"delete_namespaced_{noun}"),
        )

    def _vpa_operations(
        self,
    ) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        custom, kind = self._custom, (VPA_GROUP, VPA_VERSION)

        def create(namespace: str, body: Any, **kw: Any) -> Any:
            return custom.create_namespaced_custom_object(*kind, namespace, VPA_PLURAL, body, **kw)

        def read(name: str, namespace: str, **kw: Any) -> Any:
            return custom.get_namespaced_custom_object(*kind, namespace, VPA_PLURAL, name, **kw)

        def replace(name: str, namespace: str, body: Any, **kw: Any) -> Any:
            return custom.replace_namespaced_custom_object(*kind, namespace, VPA_PLURAL, name, body, **kw)

        def delete(name: str, namespace: str, **kw: Any) -> Any:
            return custom.delete_namespaced_custom_object(*kind, namespace, VPA_PLURAL, name, **kw)

        return create, read, replace, delete

    def _read_raw(self, what: str, read: Callable[..., Any], name: str) -> dict[str, Any]:
        """The object as the API server sent it (camelCase keys), not the client's model of it."""
        response = self._call(what, read, name, self._serving_namespace, _preload_content=False)
        try:
            obj: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()  # not preloaded: the connection goes back to the pool by hand
        return obj

    def apply(self, manifest: dict[str, Any]) -> None:
        """Make the object what the manifest says: create it, or replace it when what the adapter
        owns changed. Two fields stay as they are on the live object: a Deployment's replicas
        (owned by scale/HPA) and a Service's selector (owned by the rollout, changed only by
        switch_service_selector).

        A replace (not a strategic merge patch) so that what a newer manifest leaves out (an env
        var, a port, an annotation) is gone from the cluster too: a patch merges lists such as
        env by name and keeps entries it does not mention. An object already applied from the
        same manifest is not written at all (its applied-hash annotation matches): it is read
        first, as most applies find their object already there and unchanged."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        what = self._serving(kind, name)
        create, read, replace, _ = self._operations(kind)
        body = copy.deepcopy(manifest)
        body["metadata"]["namespace"] = self._serving_namespace
        owned = copy.deepcopy(body)
        if kind == "Deployment":
            owned["spec"].pop("replicas", None)
        if kind == "Service":
            owned["spec"].pop("selector", None)
        wanted = applied_hash(owned)
        body["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = wanted
        for _ in range(UPDATE_ATTEMPTS):
            try:
                live = self._read_raw(what, read, name)
            except NotFound:
                try:
                    self._call(what, create, self._serving_namespace, body, **STRICT)
                    return
                except Conflict:
                    continue  # created meanwhile: read it and decide again
            live_metadata = live.get("metadata") or {}
            if kind == "Job" or (live_metadata.get("annotations") or {}).get(SPEC_HASH_ANNOTATION) == wanted:
                return  # a Job's pod template cannot change: the one that exists is the one asked for
            replacement = copy.deepcopy(body)
            replacement["metadata"]["resourceVersion"] = live_metadata.get("resourceVersion")
            live_spec = live.get("spec") or {}
            if kind == "Deployment" and "replicas" in live_spec:
                replacement["spec"]["replicas"] = live_spec["replicas"]
            if kind == "Service":
                replacement["spec"]["selector"] = live_spec.get("selector")
            try:
                self._call(what, replace, name, self._serving_namespace, replacement, **STRICT)
                return
            except Conflict:
                continue  # someone wrote in between: read again and decide again
        raise PreconditionFailed(f"{what} kept changing while it was applied ({UPDATE_ATTEMPTS} attempts)")

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        if manifest.get("kind") != "Deployment":
            raise ValueError("apply_deployment takes a Deployment")
        self.apply(manifest)

    def scale_deployment(self, name: str, replicas: int) -> None:
        self._call(
            self._serving("Deployment", name),
            self._apps.patch_namespaced_deployment_scale,
            name, self._serving_namespace, {"spec": {"replicas": replicas}}, **STRICT,
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
            self._call(what, self._core.patch_namespaced_service, name, self._serving_namespace, body, **STRICT)
        except Conflict as exc:
            raise PreconditionFailed(f"{what} changed while switching its selector; re-read and retry") from exc
        return True

    def ingress_weights(self, name: str) -> dict[str, int]:
        try:
            obj = self._call(
                self._serving("Ingress", name), self._networking.read_namespaced_ingress, name, self._serving_namespace
            )
        except NotFound:
            return {}
        annotations = dict(obj.metadata.annotations or {}) if obj.metadata else {}
        return weights_of_ingress({"metadata": {"annotations": annotations}})

    def delete_deployment(self, name: str) -> None:
        """Delete one version: its Deployment and the PDB, HPA and VPA of the same name. Idempotent."""
        for kind in ("VerticalPodAutoscaler", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Deployment"):
            *_, delete = self._operations(kind)
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
        *_, delete = self._operations(kind)
        # A Job's pods go with it (the API's default for Jobs leaves them orphaned).
        options: dict[str, Any] = {"body": {"propagationPolicy": "Background"}} if kind == "Job" else {}
        try:
            self._call(self._serving(kind, name), delete, name, self._serving_namespace, **options)
        except NotFound:
            return
