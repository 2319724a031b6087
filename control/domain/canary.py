"""Canary strategy: the steps a canary rollout goes through, parsed and checked, and its capacity rule.

A canary sends a share of the traffic to the new version (setWeight), waits (pause), and judges the
new version against the stable one on the same window (analysis), step by step, as Argo Rollouts
and SageMaker deployment guardrails express it:

    [{"setWeight": 10}, {"pause": "30s"}, {"analysis": {}}, {"setWeight": 50}, {"pause": "30s"}, {"setWeight": 100}]

or the shorthand `{"type": "canary", "weights": [10, 50, 100], "step_pause": "30s"}` (each weight below
100 followed by the pause and an analysis). After the last step the canary is promoted: the stable
Service selects it and it takes all the traffic. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from control.domain.rollout_analysis import AnalysisCheck, parse_checks
from control.errors import InvalidInput

MAX_STEPS = 20
# The rollout state machine's execution times out after 24 h; the canary's pauses, with the analyses
# and the scale-downs after them, must end well inside it.
MAX_CANARY_SECONDS = 12 * 3600
BLUE_GREEN = "blueGreen"
CANARY = "canary"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class SetWeight:
    """Send `weight` % of the requests to the canary (0-100)."""

    weight: int

    def describe(self) -> str:
        return f"setWeight {self.weight}%"

    def to_dict(self) -> dict[str, Any]:
        return {"setWeight": self.weight}


@dataclass(frozen=True)
class Pause:
    """Hold the weight this long; the canary is still analysed meanwhile and a failure aborts."""

    seconds: float

    def describe(self) -> str:
        return f"pause {self.seconds:g}s"

    def to_dict(self) -> dict[str, Any]:
        return {"pause": f"{self.seconds:g}s"}


@dataclass(frozen=True)
class Analysis:
    """Compare the canary with the stable version on the same window; a failure aborts, a pass moves
    on, no verdict waits (and pauses the rollout after its inconclusive timeout). The rollout's
    post-promotion checks (the deployment's policy: the ones a version taking live traffic must pass)
    always apply; `checks` add to them, or replace the policy's check of the same name."""

    checks: tuple[AnalysisCheck, ...] | None = None

    def describe(self) -> str:
        return "analysis"

    def to_dict(self) -> dict[str, Any]:
        return {"analysis": {} if self.checks is None else {"checks": [check.to_dict() for check in self.checks]}}


CanaryStep = SetWeight | Pause | Analysis


@dataclass(frozen=True)
class CanaryStrategy:
    steps: tuple[CanaryStep, ...]

    def __post_init__(self) -> None:
        check_steps(self.steps)

    def weight_before(self, index: int) -> int:
        """The weight the steps before `index` leave the canary at."""
        weights = [step.weight for step in self.steps[:index] if isinstance(step, SetWeight)]
        return weights[-1] if weights else 0

    def describe(self) -> str:
        return ", ".join(step.describe() for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"type": CANARY, "steps": [step.to_dict() for step in self.steps]}


def strategy_to_dict(strategy: CanaryStrategy | None) -> dict[str, Any]:
    return {"type": BLUE_GREEN} if strategy is None else strategy.to_dict()


# ------------------------------------------------------------------------------------- parsing


def parse_duration(raw: Any, field: str) -> float:
    """ "30s", "5m", "1h", "250ms" or a number of seconds."""
    if isinstance(raw, bool):
        raise InvalidInput(f"{field} must be a duration such as 30s, 5m or 1h; got {raw!r}", field=field)
    if isinstance(raw, (int, float)):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw.strip())):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise InvalidInput(f"{field} must be a duration such as 30s, 5m or 1h; got {raw!r}", field=field)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_CANARY_SECONDS:
        raise InvalidInput(
            f"{field} must be above 0 and at most the rollout deadline ({MAX_CANARY_SECONDS}s, 12 h); got {raw!r}",
            field=field,
        )
    return seconds


def _parse_step(raw: Any, field: str) -> CanaryStep:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise InvalidInput(f"{field} must be an object with one of setWeight, pause, analysis", field=field)
    ((kind, value),) = raw.items()
    if kind == "setWeight":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidInput(f"{field}.setWeight must be an integer 0-100; got {value!r}", field=f"{field}.setWeight")
        return SetWeight(value)
    if kind == "pause":
        if isinstance(value, Mapping):
            value = value.get("duration")
        return Pause(parse_duration(value, f"{field}.pause"))
    if kind == "analysis":
        if value is None:
            return Analysis()
        if not isinstance(value, Mapping) or set(value) - {"checks"}:
            raise InvalidInput(f"{field}.analysis must be an object with optional checks", field=f"{field}.analysis")
        checks = value.get("checks")
        return Analysis(None if checks is None else parse_checks(checks, f"{field}.analysis.checks"))
    raise InvalidInput(f"{field}: unknown step {kind!r}; use setWeight, pause or analysis", field=field)


def check_steps(steps: Sequence[CanaryStep], field: str = "strategy.steps") -> None:
    """Weights 0-100 and increasing, at most MAX_STEPS steps, pauses inside the rollout deadline,
    and an analysis only once the canary has traffic to judge."""
    if not steps:
        raise InvalidInput(f"{field} must list at least one step", field=field)
    if len(steps) > MAX_STEPS:
        raise InvalidInput(f"{field} has {len(steps)} steps; at most {MAX_STEPS}", field=field)
    weight, paused = -1, 0.0
    for index, step in enumerate(steps):
        where = f"{field}[{index}]"
        if isinstance(step, SetWeight):
            if isinstance(step.weight, bool) or not isinstance(step.weight, int) or not 0 <= step.weight <= 100:
                raise InvalidInput(f"{where}.setWeight must be an integer 0-100", field=f"{where}.setWeight")
            if step.weight <= weight:
                raise InvalidInput(
                    f"{where}.setWeight must be above the previous weight ({weight}); got {step.weight}",
                    field=f"{where}.setWeight",
                )
            weight = step.weight
        elif isinstance(step, Pause):
            paused += step.seconds
            if paused > MAX_CANARY_SECONDS:
                raise InvalidInput(
                    f"{where}.pause: the pauses add up to {paused:g}s, over the rollout deadline "
                    f"({MAX_CANARY_SECONDS}s, 12 h)",
                    field=f"{where}.pause",
                )
        elif isinstance(step, Analysis):
            if weight <= 0:
                raise InvalidInput(
                    f"{where}.analysis comes before any traffic reaches the canary; put a setWeight above 0 first",
                    field=f"{where}.analysis",
                )
        else:
            raise InvalidInput(f"{where} is not a canary step", field=where)


def shorthand_steps(weights: Sequence[int], pause_seconds: float | None) -> tuple[CanaryStep, ...]:
    """`10,50,100` with a step pause: setWeight, pause, analysis for each weight below 100."""
    steps: list[CanaryStep] = []
    for weight in weights:
        steps.append(SetWeight(weight))
        if weight < 100:
            if pause_seconds:
                steps.append(Pause(pause_seconds))
            if weight > 0:
                steps.append(Analysis())
    return tuple(steps)


def parse_strategy(raw: Any, field: str = "strategy") -> CanaryStrategy | None:
    """`"blueGreen"`, `{"type": "blueGreen"}`, `{"type": "canary", "steps": [...]}` or the shorthand
    `{"type": "canary", "weights": "10,50,100", "step_pause": "30s"}`. None means blue-green."""
    if raw == BLUE_GREEN:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{field} must be {BLUE_GREEN!r} or an object with a type", field=field)
    kind = raw.get("type")
    if kind == BLUE_GREEN:
        if set(raw) - {"type"}:
            raise InvalidInput(f"{field}: a blueGreen strategy takes no other settings", field=field)
        return None
    if kind != CANARY:
        raise InvalidInput(f"{field}.type must be {BLUE_GREEN} or {CANARY}; got {kind!r}", field=f"{field}.type")
    unknown = sorted(set(raw) - {"type", "steps", "weights", "step_pause"})
    if unknown:
        raise InvalidInput(f"{field} has unknown keys: {', '.join(unknown)}", field=f"{field}.{unknown[0]}")
    if "steps" in raw:
        if "weights" in raw or "step_pause" in raw:
            raise InvalidInput(f"{field}: give steps or the weights shorthand, not both", field=f"{field}.steps")
        steps_raw = raw["steps"]
        if not isinstance(steps_raw, (list, tuple)):
            raise InvalidInput(f"{field}.steps must be a list of steps", field=f"{field}.steps")
        if len(steps_raw) > MAX_STEPS:
            raise InvalidInput(f"{field}.steps has {len(steps_raw)} steps; at most {MAX_STEPS}", field=f"{field}.steps")
        steps = tuple(_parse_step(item, f"{field}.steps[{index}]") for index, item in enumerate(steps_raw))
        check_steps(steps, f"{field}.steps")
        return CanaryStrategy(steps)
    if "weights" not in raw:
        raise InvalidInput(f"{field}: a canary needs steps or weights", field=f"{field}.steps")
    weights = _parse_weights(raw["weights"], f"{field}.weights")
    pause = parse_duration(raw["step_pause"], f"{field}.step_pause") if raw.get("step_pause") is not None else None
    steps = shorthand_steps(weights, pause)
    try:
        check_steps(steps, f"{field}.steps")
    except InvalidInput as error:  # name the shorthand the user wrote, not the steps made from it
        target = f"{field}.step_pause" if (error.field or "").endswith(".pause") else f"{field}.weights"
        raise InvalidInput(error.message, field=target) from None
    return CanaryStrategy(steps)


def _parse_weights(raw: Any, field: str) -> tuple[int, ...]:
    parts: Sequence[Any] = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, (list, tuple)) else [None]
    weights = []
    for part in parts:
        value = part.strip() if isinstance(part, str) else part
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidInput(f"{field} must be integers 0-100, e.g. 10,50,100; got {raw!r}", field=field)
        weights.append(value)
    previous = -1
    for value in weights:
        if value <= previous:
            raise InvalidInput(f"{field} must increase, e.g. 10,50,100; got {raw!r}", field=field)
        previous = value
    if len(weights) > MAX_STEPS:
        raise InvalidInput(f"{field} has {len(weights)} weights; at most {MAX_STEPS}", field=field)
    return tuple(weights)


# ------------------------------------------------------------------------------------ capacity


def canary_replicas(weight: int, replicas: int) -> int:
    """The canary's pods follow its share: at 10 % of 10 stable pods, 1 pod."""
    return math.ceil(weight * replicas / 100) if weight > 0 else 0


def stable_replicas(weight: int, replicas: int) -> int:
    """The stable side keeps enough pods for what it still serves, and at least one until the
    canary is promoted (an abort sends everything back to it at once)."""
    return max(1, math.ceil((100 - weight) * replicas / 100))
