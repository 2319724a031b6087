"""The composition root: reads the settings once and builds the adapters the use cases need.

Only this module knows which adapter is in use (EKS or the local cluster).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from control.adapters import aws
from control.adapters.dead_letters import DeadLetterQueue
from control.adapters.dynamodb_deployments import DynamoDbDeployments
from control.adapters.dynamodb_registry import DynamoDbRegistry
from control.adapters.efs_staging import EfsDatasetStager
from control.adapters.efs_tree import EfsTree
from control.adapters.s3_store import S3Store
from control.adapters.secrets import SecretValue
from control.adapters.stepfunctions import StepFunctions
from control.ports import ServingCluster, TrainingCluster
from control.settings import Settings

if TYPE_CHECKING:
    from control.adapters.prometheus import PrometheusQueries

REPO = Path(__file__).resolve().parents[1]
AWS_ENV = frozenset(
    {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"}
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Platform:
    """Adapters built on first use, so that importing a handler builds no client."""

    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)

    def _client(self, service: str) -> Any:
        return aws.client(service, self.settings.region, self.settings.aws_endpoint_url)

    @cached_property
    def registry(self) -> DynamoDbRegistry:
        return DynamoDbRegistry(self._client("dynamodb"), self.settings.registry_table)

    @cached_property
    def s3(self) -> S3Store:
        return S3Store(self._client("s3"))

    @cached_property
    def pipelines(self) -> StepFunctions:
        return StepFunctions(self._client("stepfunctions"))

    @cached_property
    def dead_letters(self) -> DeadLetterQueue:
        return DeadLetterQueue(self._client("sqs"), self.settings.dead_letter_queue_url)

    @cached_property
    def deployments(self) -> DynamoDbDeployments:
        return DynamoDbDeployments(self._client("dynamodb"), self.settings.registry_table)

    @cached_property
    def alert_token(self) -> str:
        """The Alertmanager webhook's bearer token: from Secrets Manager in AWS, a setting locally."""
        if self.settings.alert_token_secret_arn:
            return SecretValue(self._client("secretsmanager"), self.settings.alert_token_secret_arn).get()
        return self.settings.alert_token

    @cached_property
    def prometheus(self) -> PrometheusQueries:
        from control.adapters.prometheus import PrometheusQueries  # only the rollout analysis needs requests

        return PrometheusQueries(self.settings.prometheus_url)

    @cached_property
    def serving(self) -> ServingCluster:
        if self.settings.cluster == "local":
            from control.local.serving import LocalServing

            return LocalServing(Path(self.settings.local_state_dir) / "serving", repo_root=REPO, env=_aws_env())
        return self.cluster  # type: ignore[return-value]  # the EKS adapter serves both ports

    @property
    def efs_root(self) -> Path:
        """The checkpoint file system as this process sees it: the Lambda's EFS mount, or the local
        cluster's folder that plays EFS (LocalCluster maps /mnt/checkpoints onto it)."""
        if self.settings.cluster == "local":
            return Path(self.settings.local_state_dir) / "cluster" / "checkpoints"
        return Path(self.settings.efs_mount_path)

    @cached_property
    def efs(self) -> EfsTree:
        return EfsTree(self.efs_root)

    @cached_property
    def staging(self) -> EfsDatasetStager:
        return EfsDatasetStager(self._client("s3"), self.efs_root)

    @cached_property
    def cluster(self) -> TrainingCluster:
        if self.settings.cluster == "local":
            from control.local.cluster import LocalCluster

            # Jobs reach the same (embedded) AWS as this process, with the same credentials.
            job_env = {name: value for name, value in os.environ.items() if name in AWS_ENV}
            return LocalCluster(Path(self.settings.local_state_dir) / "cluster", repo_root=REPO, env=job_env)
        from control.adapters.kubernetes_cluster import KubernetesCluster

        return KubernetesCluster.for_settings(self.settings)


def _aws_env() -> dict[str, str]:
    """Local jobs and servers reach the same (embedded) AWS as this process, as it does."""
    return {name: value for name, value in os.environ.items() if name in AWS_ENV}


def build_platform(settings: Settings | None = None) -> Platform:
    return Platform(settings or Settings.from_env())
