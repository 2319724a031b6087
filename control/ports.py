"""Ports the use cases declare; adapters implement them. Only the composition root picks one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from control.domain.serving import DeploymentReadiness
from control.domain.training import JobStatus


class TrainingCluster(Protocol):
    """Runs training jobs: an MPIJob on EKS, or `horovodrun` on this host."""

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        """Create the job. Creating one that already exists with the same spec succeeds."""

    def training_job_status(self, name: str) -> JobStatus:
        """Raise NotFound if there is no such job."""

    def delete_training_job(self, name: str) -> None:
        """Deleting a job that is gone succeeds."""


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

    def job_exists(self, name: str) -> bool:
        """A batch/v1 Job of that name exists (running or finished)."""

    def delete(self, kind: str, name: str) -> None:
        """Delete one applied object (a Job with its pods). Deleting one that is gone succeeds."""
