"""Analysis for blue-green rollouts: PromQL checks with thresholds, judged from measured values.

A check is a PromQL query template and a threshold. The query is rendered for one version of
one deployment; the adapter measures it (an instant query that returns one number, or nothing);
the domain judges the numbers. No data, NaN or an unreachable Prometheus is *inconclusive*, never
a pass: the rollout pauses rather than promotes blindly.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from control.errors import InvalidInput

CHECK_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_QUERY_LENGTH = 4096
MAX_CHECKS = 20
# Placeholders are replaced literally, not with str.format: PromQL label matchers use braces.
PLACEHOLDERS = ("{deployment}", "{model}", "{version}")


class Comparison(enum.StrEnum):
    """How a measured value must relate to the threshold for the check to pass."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    def holds(self, value: float, threshold: float) -> bool:
        if self is Comparison.LT:
            return value < threshold
        if self is Comparison.LE:
            return value <= threshold
        if self is Comparison.GT:
            return value > threshold
        return value >= threshold


class Outcome(enum.StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    INCONCLUSIVE = "INCONCLUSIVE"


class AnalysisStage(enum.StrEnum):
    PRE_PROMOTION = "PRE_PROMOTION"  # against the preview (green) before any traffic moves
    POST_PROMOTION = "POST_PROMOTION"  # against the new active version while it bakes
    CANARY = "CANARY"  # the canary against the stable version, on the same window, while both serve


@dataclass(frozen=True)
class AnalysisCheck:
    """One PromQL query and the threshold its single value must clear, e.g. error ratio < 0.05."""

    name: str
    query: str
    comparison: Comparison
    threshold: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not CHECK_NAME_PATTERN.match(self.name):
            raise InvalidInput(
                f"analysis check name must be 1-63 lower-case letters, digits, '-' or '_'; got {self.name!r}",
                field="name",
            )
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidInput(f"analysis check {self.name}: query must be a non-empty string", field="query")
        if len(self.query) > MAX_QUERY_LENGTH:
            raise InvalidInput(
                f"analysis check {self.name}: query is longer than {MAX_QUERY_LENGTH} characters",
                field="query",
            )
        if not isinstance(self.comparison, Comparison):
            raise InvalidInput(f"analysis check {self.name}: bad comparison", field="comparison")
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, (int, float))
            or not math.isfinite(self.threshold)
        ):
            raise InvalidInput(f"analysis check {self.name}: threshold must be a finite number", field="threshold")

    def render(self, *, deployment: str, model: str, version: int) -> str:
        return (
            self.query.replace("{deployment}", deployment).replace("{model}", model).replace("{version}", str(version))
        )

    def judge(self, value: float | None) -> CheckResult:
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            return CheckResult(self.name, None, Outcome.INCONCLUSIVE, self.comparison, self.threshold)
        passed = self.comparison.holds(float(value), self.threshold)
        return CheckResult(
            self.name,
            float(value),
            Outcome.PASSED if passed else Outcome.FAILED,
            self.comparison,
            self.threshold,
        )

    @classmethod
    def parse(cls, raw: Any, field: str = "check") -> AnalysisCheck:
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{field} must be an object with name, query, comparison, threshold", field=field)
        unknown = sorted(set(raw) - {"name", "query", "comparison", "threshold"})
        if unknown:
            raise InvalidInput(f"{field} has unknown keys: {', '.join(unknown)}", field=f"{field}.{unknown[0]}")
        for key in ("name", "query", "comparison", "threshold"):
            if key not in raw:
                raise InvalidInput(f"{field}.{key} is required", field=f"{field}.{key}")
        try:
            comparison = Comparison(raw["comparison"])
        except ValueError:
            raise InvalidInput(
                f"{field}.comparison must be one of {', '.join(c.value for c in Comparison)}; "
                f"got {raw['comparison']!r}",
                field=f"{field}.comparison",
            ) from None
        try:
            return cls(raw["name"], raw["query"], comparison, raw["threshold"])
        except InvalidInput as error:
            raise InvalidInput(error.message, field=f"{field}.{error.field}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "query": self.query,
            "comparison": self.comparison.value,
            "threshold": self.threshold,
        }


def parse_checks(raw: Any, field: str) -> tuple[AnalysisCheck, ...]:
    if not isinstance(raw, (list, tuple)):
        raise InvalidInput(f"{field} must be a list of analysis checks", field=field)
    if len(raw) > MAX_CHECKS:
        raise InvalidInput(f"{field} has {len(raw)} checks; at most {MAX_CHECKS}", field=field)
    checks = tuple(AnalysisCheck.parse(item, f"{field}[{index}]") for index, item in enumerate(raw))
    check_unique_names(checks, field)
    return checks


def check_unique_names(checks: Iterable[AnalysisCheck], field: str) -> None:
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise InvalidInput(f"{field}: check name {check.name!r} appears twice", field=field)
        seen.add(check.name)


def default_checks() -> tuple[AnalysisCheck, ...]:
    """Error ratio < 5 % and p99 latency < 0.5 s over the last minute, from the model server's metrics."""
    # Scoped to the deployment: the same version failing in another deployment must not block this one.
    selector = 'deployment="{deployment}",model="{model}",version="{version}"'
    return (
        AnalysisCheck(
            "error-ratio",
            # `or vector(0)`: a version that never failed has no 5xx series; no traffic stays no data.
            f'(sum(rate(mlcp_inference_requests_total{{{selector},code=~"5.."}}[1m])) or vector(0))'
            f" / sum(rate(mlcp_inference_requests_total{{{selector}}}[1m]))",
            Comparison.LT,
            0.05,
        ),
        AnalysisCheck(
            "latency-p99",
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(mlcp_inference_request_duration_seconds_bucket{{{selector}}}[1m])))",
            Comparison.LT,
            0.5,
        ),
    )


@dataclass(frozen=True)
class CheckResult:
    name: str
    value: float | None
    outcome: Outcome
    comparison: Comparison
    threshold: float
    baseline: float | None = None  # a canary analysis: the stable version's value on the same window

    def describe(self) -> str:
        measured = "no data" if self.value is None else f"{self.value:.4g}"
        stable = "" if self.baseline is None else f", stable {self.baseline:.4g}"
        return f"{self.name}={measured} (needs {self.comparison.value} {self.threshold:g}{stable})"

    def to_dict(self) -> dict[str, Any]:
        body = {
            "name": self.name,
            "value": self.value,
            "outcome": self.outcome.value,
            "comparison": self.comparison.value,
            "threshold": self.threshold,
        }
        return body if self.baseline is None else {**body, "baseline": self.baseline}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CheckResult:
        value = raw.get("value")
        return cls(
            raw["name"],
            None if value is None else float(value),
            Outcome(raw["outcome"]),
            Comparison(raw["comparison"]),
            float(raw["threshold"]),
            None if raw.get("baseline") is None else float(raw["baseline"]),
        )


@dataclass(frozen=True)
class AnalysisResult:
    """One round of analysis: every check judged once. A failure outweighs missing data."""

    stage: AnalysisStage
    version: int
    outcome: Outcome
    checks: tuple[CheckResult, ...]
    measured_at: datetime
    error: str = ""  # why there were no measurements at all (e.g. Prometheus unreachable)

    def summary(self) -> str:
        if self.error and all(check.value is None for check in self.checks):
            return f"{self.outcome.value.lower()}: {self.error}"
        if not self.checks:
            return "passed: no checks configured"
        relevant = [c for c in self.checks if c.outcome is self.outcome] or list(self.checks)
        return f"{self.outcome.value.lower()}: " + ", ".join(c.describe() for c in relevant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "version": self.version,
            "outcome": self.outcome.value,
            "checks": [check.to_dict() for check in self.checks],
            "measured_at": self.measured_at.isoformat(),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AnalysisResult:
        return cls(
            AnalysisStage(raw["stage"]),
            int(raw["version"]),
            Outcome(raw["outcome"]),
            tuple(CheckResult.from_dict(check) for check in raw.get("checks", ())),
            datetime.fromisoformat(raw["measured_at"]),
            raw.get("error", ""),
        )


def evaluate(
    checks: Iterable[AnalysisCheck],
    values: Mapping[str, float | None],
    *,
    stage: AnalysisStage,
    version: int,
    now: datetime,
    error: str = "",
) -> AnalysisResult:
    """Judge every check; a missing value is inconclusive. No checks at all passes."""
    results = tuple(check.judge(values.get(check.name)) for check in checks)
    return _combine(results, stage, version, now, error)


def _combine(
    results: tuple[CheckResult, ...], stage: AnalysisStage, version: int, now: datetime, error: str
) -> AnalysisResult:
    outcomes = {result.outcome for result in results}
    if Outcome.FAILED in outcomes:
        outcome = Outcome.FAILED
    elif Outcome.INCONCLUSIVE in outcomes:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASSED
    return AnalysisResult(stage, version, outcome, results, now, error if outcome is not Outcome.PASSED else "")


# A canary that breaks a threshold the stable version breaks too is blamed only when it is clearly
# worse than stable (by this fraction): a slow shared dependency must not abort every canary.
RELATIVE_MARGIN = 0.5


def judge_against_baseline(check: AnalysisCheck, value: float | None, baseline: float | None) -> CheckResult:
    """The canary's value against the threshold and against the stable version's on the same window."""
    own = check.judge(value)
    stable = check.judge(baseline)
    if own.outcome is not Outcome.FAILED or stable.outcome is not Outcome.FAILED:
        return CheckResult(own.name, own.value, own.outcome, own.comparison, own.threshold, stable.value)
    assert own.value is not None and stable.value is not None
    worse = (
        own.value > stable.value * (1 + RELATIVE_MARGIN)
        if check.comparison in (Comparison.LT, Comparison.LE)
        else own.value < stable.value * (1 - RELATIVE_MARGIN)
    )
    outcome = Outcome.FAILED if worse else Outcome.INCONCLUSIVE
    return CheckResult(own.name, own.value, outcome, own.comparison, own.threshold, stable.value)


def evaluate_against_baseline(
    checks: Iterable[AnalysisCheck],
    values: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    *,
    version: int,
    now: datetime,
    error: str = "",
) -> AnalysisResult:
    """A canary analysis: every check judged on the canary's value, with stable's as the baseline."""
    results = tuple(judge_against_baseline(c, values.get(c.name), baseline.get(c.name)) for c in checks)
    return _combine(results, AnalysisStage.CANARY, version, now, error)
