"""The seam through which the embedded platform runs on clusters other than its local ones.

By default the embedded runtime runs training and serving as local processes (LocalCluster,
LocalServing). Given a `ClusterFactory`, it builds its platform on the ports that factory returns
instead (the EKS adapters against a Kubernetes API server, for example) and reaches what the
demo and the tests need (Service URLs, a fault in a model server, a job's log) through it.
Nothing here knows which implementation it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from control.ports import ServingCluster, TrainingCluster


@dataclass(frozen=True)
class ClusterContext:
    """What the runtime gives a factory: its state folder, the env every job and model server
    needs (the embedded AWS endpoint and keys), and the file_sd files its Prometheus reads."""

    state_dir: Path
    env: Mapping[str, str]
    serving_targets_file: Path
    training_targets_file: Path


class EmbeddedClusters(Protocol):
    training: TrainingCluster
    serving: ServingCluster

    @property
    def checkpoints_dir(self) -> Path:
        """The folder that plays the checkpoint file system (/mnt/checkpoints)."""
        ...

    def service_urls(self) -> dict[str, str]:
        """Each Service's URL from this host."""
        ...

    def fault(self, deployment_name: str, error_ratio: float, latency_ms: float = 0.0) -> None:
        """Make a version's model servers fail `error_ratio` of their invocations."""
        ...

    def training_log_paths(self, job_name: str) -> tuple[Path, Path]:
        """(stdout, stderr) of a training job's launcher."""
        ...

    def stop(self) -> None: ...


ClusterFactory = Callable[[ClusterContext], EmbeddedClusters]
