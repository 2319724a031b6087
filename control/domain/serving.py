"""What the control plane observes of a served model version."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeploymentReadiness:
    name: str
    desired: int
    ready: int
    updated: int
    available: int
    observed: bool  # the controller has seen the latest spec

    @property
    def is_ready(self) -> bool:
        """Every desired replica runs the latest template and passes its readiness probe."""
        return self.observed and self.ready >= self.desired and self.updated >= self.desired
