"""Ports the use cases declare; adapters implement them. Only the composition root picks one."""

from __future__ import annotations

from typing import Any, Protocol

from control.domain.training import JobStatus


class TrainingCluster(Protocol):
    """Runs training jobs: an MPIJob on EKS, or `horovodrun` on this host."""

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        """Create the job. Creating one that already exists with the same spec succeeds."""

    def training_job_status(self, name: str) -> JobStatus:
        """Raise NotFound if there is no such job."""

    def delete_training_job(self, name: str) -> None:
        """Deleting a job that is gone succeeds."""
