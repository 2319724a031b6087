"""Ports: every outside system the use cases touch, as a Protocol; adapters implement them.

`Platform` is the set of ports one process's use cases are given. Only the composition root
(control.composition) and the embedded runtime (control.local) choose the adapters behind it; a
test gives in-memory ones (tests/fakes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from control.domain.datasets import ObjectInfo
from control.domain.deployments import DeploymentRecord
from control.domain.pipelines import Started
from control.domain.registry import Alias, HistoryEntry, Lineage, ModelSummary, ModelVersion, VersionStatus
from control.domain.retention import EfsEntry
from control.domain.rightsizing import WorkerUsage
from control.domain.serving import DeploymentReadiness
from control.domain.staging import SourceObject, StagingResult
from control.domain.training import JobStatus
from control.domain.training_runs import RunRecord
from control.settings import Settings


class ModelRegistry(Protocol):
    """Model versions, their status and aliases, the append-only history, and training runs (DynamoDB)."""

    def register_version(
        self, model_name: str, lineage: Lineage, *, actor: str, now: datetime
    ) -> tuple[ModelVersion, bool]:
        """The next version number, once per training run: (version, created); a repeat returns the first."""

    def get_version(self, model_name: str, version: int) -> ModelVersion:
        """Raise NotFound if there is no such version."""

    def list_versions(self, model_name: str) -> list[ModelVersion]: ...

    def list_models(self) -> list[ModelSummary]: ...

    def set_status(
        self, model_name: str, version: int, target: VersionStatus, *, actor: str, reason: str, now: datetime
    ) -> ModelVersion:
        """Raise Conflict for a transition the lifecycle does not allow."""

    def set_alias(
        self,
        model_name: str,
        alias: Alias,
        version: int,
        *,
        actor: str,
        reason: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...

    def aliases(self, model_name: str) -> dict[str, int]: ...

    def record(self, entry: HistoryEntry, *, dedupe_key: str = "") -> bool:
        """Append to the history; False (nothing written) if `dedupe_key` was recorded before."""

    def history(self, model_name: str) -> list[HistoryEntry]: ...

    def put_run(self, run_id: str, fields: Mapping[str, Any]) -> None:
        """Create or update a training run's record with `fields`."""

    def get_run(self, run_id: str) -> RunRecord:
        """Raise NotFound if there is no such run."""

    def list_runs(self) -> list[RunRecord]: ...


class DeploymentStore(Protocol):
    """One record per deployment, written only if its revision is unchanged (DynamoDB)."""

    def get(self, deployment: str) -> DeploymentRecord | None: ...

    def names(self) -> list[str]: ...

    def put(self, record: DeploymentRecord, *, expected_revision: int | None) -> None:
        """Write if the stored revision is `expected_revision` (None: must not exist), else PreconditionFailed."""


class ObjectStore(Protocol):
    """Datasets and model artifacts (S3)."""

    def head(self, bucket: str, key: str, version_id: str = "") -> ObjectInfo:
        """Raise NotFound if there is no such object."""

    def read_bytes(self, bucket: str, key: str, max_bytes: int | None = None, version_id: str = "") -> bytes: ...

    def read_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024, version_id: str = "") -> Any:
        """Raise InvalidInput if the object is larger than `max_bytes` or not JSON."""

    def sha256(self, bucket: str, key: str) -> str: ...

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None: ...

    def exists(self, bucket: str, key: str) -> bool: ...


class DatasetStager(Protocol):
    """Copies a dataset's S3 objects onto the checkpoint file system (EFS on AWS, a folder locally)."""

    def stage(self, folder: str, sources: Sequence[SourceObject], staged_at: str) -> StagingResult:
        """Publish a complete, verified copy at `folder` (relative to the file system's root), or reuse
        one of exactly these versions; StagingFailed otherwise, leaving nothing a run reads."""


class CheckpointFiles(Protocol):
    """The checkpoint file system's folders as retention sees them (EFS on AWS, a folder locally)."""

    def entries(self, run_models: Mapping[str, str]) -> list[EfsEntry]:
        """Every staged dataset revision, temporary folder and run checkpoint folder; `run_models`
        maps run ids to their model."""

    def remove(self, path: str) -> None:
        """Remove one folder (relative to the root); removing one that is gone succeeds."""


class Pipelines(Protocol):
    """State machine executions (Step Functions): the training pipeline and the rollout loops."""

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> Started:
        """Start `name` once; a name already used is a duplicate, not an error."""

    def execution_arn(self, state_machine_arn: str, name: str) -> str: ...

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """Raise NotFound if there is no such execution."""

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's history events, oldest first."""

    def list_executions(self, state_machine_arn: str) -> list[dict[str, Any]]: ...


class MetricsQueries(Protocol):
    """Instant PromQL queries (Prometheus)."""

    def value(self, query: str) -> float | None:
        """The single value now; None when there is no data. TransientError when unreachable."""


class DeadLetters(Protocol):
    """Events that cannot be processed, kept with the reason (SQS)."""

    def send(self, *, source: str, error: str, reason: str, payload: Any, now: datetime) -> None: ...


class TrainingCluster(Protocol):
    """Runs training jobs: an MPIJob on EKS, or `horovodrun` on this host."""

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        """Create the job. Creating one that already exists with the same spec succeeds."""

    def training_job_status(self, name: str) -> JobStatus:
        """Raise NotFound if there is no such job."""

    def delete_training_job(self, name: str) -> None:
        """Deleting a job that is gone succeeds."""


class ResourceUsage(Protocol):
    """What a training job's workers used: the pods' metrics on EKS (Prometheus), the rank
    processes on this host."""

    def worker_usage(self, job_name: str, *, workers: int, since: datetime, now: datetime) -> list[WorkerUsage]:
        """One entry per worker that reported, by index; empty when nothing is known."""


class ServingCluster(Protocol):
    """Runs model-server Deployments and the Services that route to them: EKS, or this host."""

    def apply(self, manifest: dict[str, Any]) -> None:
        """Create or update a Deployment, Service, PDB, HPA, NetworkPolicy, Ingress or Job. On update a
        Service's selector and a Deployment's replica count are left as they are."""

    def scale_deployment(self, name: str, replicas: int) -> None: ...

    def deployment_readiness(self, name: str) -> DeploymentReadiness:
        """Raise NotFound if there is no such Deployment."""

    def service_selector(self, name: str) -> dict[str, str]:
        """Raise NotFound if there is no such Service."""

    def switch_service_selector(self, name: str, selector: Mapping[str, str]) -> bool:
        """Point the Service at `selector`; False (nothing written) if it already does."""

    def delete_deployment(self, name: str) -> None: ...

    def ingress_weights(self, name: str) -> dict[str, int]:
        """Service name → weight of the applied Ingress's weighted forward action (the ALB's split);
        {} if there is no such Ingress."""

    def autoscaling(self, name: str) -> dict[str, Any]:
        """A version's HPA (bounds, replicas) and VPA (its recommendation; None where no VPA runs):
        control.manifests.status.autoscaling_status's shape."""

    def job_exists(self, name: str) -> bool:
        """A batch/v1 Job of that name exists (running or finished)."""

    def delete(self, kind: str, name: str) -> None:
        """Delete one applied object (a Job with its pods). Deleting one that is gone succeeds."""


@dataclass(frozen=True)
class Platform:
    """The ports one process's use cases are given, and the settings and clock they run with."""

    settings: Settings
    registry: ModelRegistry
    deployments: DeploymentStore
    objects: ObjectStore
    staging: DatasetStager  # S3 -> the checkpoint file system
    efs: CheckpointFiles  # the checkpoint file system, for retention
    pipelines: Pipelines
    dead_letters: DeadLetters
    metrics: MetricsQueries
    training: TrainingCluster
    usage: ResourceUsage  # the training workers' CPU and memory use, for right-sizing
    serving: ServingCluster
    alert_token: Callable[[], str]  # the Alertmanager webhook's bearer token (a secret: read when needed)
    clock: Callable[[], datetime]
