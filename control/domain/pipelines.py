"""Pipeline executions (Step Functions state machines): what starting one gives back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Started:
    """A started execution; `duplicate` when one of that name had been started before (a no-op)."""

    execution_arn: str
    duplicate: bool
