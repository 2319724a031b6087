"""The composition root: builds the AWS and EKS adapters behind the ports from the settings.

Only this module (and the embedded runtime, control.local, for its local clusters) knows which
adapter is in use. Every adapter is built on first use, so that importing a handler or building
a Platform builds no client and imports no SDK the call does not need.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from control.adapters import aws
from control.adapters.dead_letters import DeadLetterQueue
from control.adapters.dynamodb_deployments import DynamoDbDeployments
from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.adapters.efs_staging import EfsDatasetStager
from control.adapters.efs_tree import EfsTree
from control.adapters.prometheus_usage import PrometheusWorkerUsage
from control.adapters.s3_store import S3Store
from control.adapters.stepfunctions import StepFunctions
from control.errors import DependencyError
from control.ports import MetricsQueries, Platform, ResourceUsage, ServingCluster, TrainingCluster
from control.settings import Settings

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Lazy:
    """Stands in for the object `build` returns, and builds it at the first attribute read."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._built: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = self._build()
        return getattr(self._built, name)


def lazy(build: Callable[[], T]) -> T:
    return cast(T, _Lazy(build))


def build_platform(
    settings: Settings | None = None,
    *,
    training: TrainingCluster | None = None,
    usage: ResourceUsage | None = None,
    serving: ServingCluster | None = None,
    efs_root: Path | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Platform:
    """The AWS adapters for `settings` (from the environment if None), the EKS cluster unless
    `training` and `serving` are given (the embedded runtime gives its local ones, and `usage`, the
    workers' use read from its processes; else the pods' metrics in Prometheus), and the
    checkpoint file system at `efs_root`: the Lambda's EFS mount unless given (the embedded
    runtime gives the folder its local cluster maps /mnt/checkpoints onto)."""
    settings = settings or Settings.from_env()
    efs_root = Path(efs_root) if efs_root is not None else Path(settings.efs_mount_path)

    def client(service: str) -> Any:
        return lazy(lambda: aws.client(service, settings.region, settings.aws_endpoint_url))

    eks = lazy(lambda: _eks_cluster(settings))  # one adapter serves both cluster ports
    metrics = lazy(lambda: _prometheus(settings))
    return Platform(
        settings=settings,
        registry=DynamoDbRegistry(client("dynamodb"), settings.registry_table),
        deployments=DynamoDbDeployments(client("dynamodb"), settings.registry_table),
        objects=S3Store(client("s3")),
        staging=EfsDatasetStager(client("s3"), efs_root),
        efs=EfsTree(efs_root),
        pipelines=StepFunctions(client("stepfunctions")),
        dead_letters=DeadLetterQueue(client("sqs"), settings.dead_letter_queue_url),
        metrics=metrics,
        training=training or eks,
        usage=usage or PrometheusWorkerUsage(metrics, settings.training_namespace),
        serving=serving or eks,
        alert_token=functools.cache(lambda: _alert_token(settings, client)),
        clock=clock,
    )


def _eks_cluster(settings: Settings) -> Any:
    if settings.cluster == "local":
        raise DependencyError(
            "CONTROL_CLUSTER=local: the embedded runtime (control.local.runtime) gives the platform its local "
            "clusters; this platform was built without them"
        )
    from control.adapters.kubernetes_cluster import KubernetesCluster  # the kubernetes client: only on EKS

    return KubernetesCluster.for_settings(settings)


def _prometheus(settings: Settings) -> MetricsQueries:
    from control.adapters.prometheus import PrometheusQueries  # only the rollout analysis needs requests

    return PrometheusQueries(settings.prometheus_url)


def _alert_token(settings: Settings, client: Callable[[str], Any]) -> str:
    """The Alertmanager webhook's bearer token: from Secrets Manager in AWS, a setting locally."""
    if settings.alert_token_secret_arn:
        from control.adapters.secrets import SecretValue

        return SecretValue(client("secretsmanager"), settings.alert_token_secret_arn).get()
    return settings.alert_token
