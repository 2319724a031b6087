"""Fault injection for tests and demos: make a share of invocations fail, or answer slowly.

Only reachable through the admin listener, which exists only when MLCP_ENABLE_FAULT_INJECTION is
set and binds to 127.0.0.1 (see README.md in this folder).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workloads.inference.errors import BadRequestBody

MAX_LATENCY_MS = 60_000.0


@dataclass(frozen=True)
class Fault:
    error_ratio: float = 0.0
    latency_ms: float = 0.0

    @property
    def active(self) -> bool:
        return self.error_ratio > 0.0 or self.latency_ms > 0.0

    def as_dict(self) -> dict[str, float]:
        return {"error_ratio": self.error_ratio, "latency_ms": self.latency_ms}


NO_FAULT = Fault()


class FaultInjector:
    def __init__(self, initial: Fault = NO_FAULT, rng: random.Random | None = None) -> None:
        self._fault = initial
        self._rng = rng or random.Random()

    @property
    def fault(self) -> Fault:
        return self._fault

    def update(self, changes: Mapping[str, Any]) -> Fault:
        """Applies {"error_ratio": 0..1, "latency_ms": 0..60000}; keys left out keep their value."""
        unknown = set(changes) - {"error_ratio", "latency_ms"}
        if unknown:
            raise BadRequestBody(f"unknown fault settings: {', '.join(sorted(unknown))}")
        ratio = _number(changes, "error_ratio", self._fault.error_ratio, 0.0, 1.0)
        latency = _number(changes, "latency_ms", self._fault.latency_ms, 0.0, MAX_LATENCY_MS)
        # One assignment: a request in flight sees either the old fault or the new one, never a mix.
        self._fault = Fault(error_ratio=ratio, latency_ms=latency)
        return self._fault

    def reset(self) -> Fault:
        self._fault = NO_FAULT
        return NO_FAULT

    def draw(self) -> tuple[float, bool]:
        """(seconds to wait, whether to fail) for one invocation."""
        fault = self._fault
        if not fault.active:
            return 0.0, False
        fail = fault.error_ratio > 0.0 and self._rng.random() < fault.error_ratio
        return fault.latency_ms / 1000.0, fail


def _number(changes: Mapping[str, Any], name: str, current: float, low: float, high: float) -> float:
    if name not in changes:
        return current
    value = changes[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequestBody(f"{name} must be a number between {low:g} and {high:g}, not {value!r}")
    return float(value)
