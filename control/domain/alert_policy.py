"""Which Alertmanager alerts roll a deployment back: the policy and the pure decision.

`decide_alert_actions` turns firing alerts that a deployment's policy selects into rollback
intents keyed by the alert fingerprint and start time, so the duplicate deliveries of an HA
Alertmanager pair are no-ops; everything else is ignored with a reason. The alerts come parsed
(control.domain.alert_payload).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from control.domain.alert_payload import Alert, AlertStatus
from control.domain.rollout import IntentSource, RollbackIntent, RolloutStatus
from control.errors import InvalidInput

# --------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class AlertPolicy:
    """Which firing alerts roll a deployment back. Empty `alertnames` means any alert name."""

    auto_rollback: bool = True
    severities: frozenset[str] = frozenset({"critical"})
    alertnames: frozenset[str] = frozenset()

    def matches(self, alert: Alert) -> bool:
        return (
            self.auto_rollback
            and alert.severity in self.severities
            and (not self.alertnames or alert.name in self.alertnames)
        )

    def describe(self) -> str:
        if not self.auto_rollback:
            return "automatic rollback is off"
        names = ", ".join(sorted(self.alertnames)) if self.alertnames else "any alert"
        return f"rolls back on {names} with severity {'/'.join(sorted(self.severities))}"

    @classmethod
    def parse(cls, raw: Any, field: str = "alert_policy") -> AlertPolicy:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{field} must be an object", field=field)
        unknown = sorted(set(raw) - {"auto_rollback", "severities", "alertnames"})
        if unknown:
            raise InvalidInput(f"{field} has unknown keys: {', '.join(unknown)}", field=f"{field}.{unknown[0]}")
        auto = raw.get("auto_rollback", True)
        if not isinstance(auto, bool):
            raise InvalidInput(f"{field}.auto_rollback must be true or false", field=f"{field}.auto_rollback")
        values: dict[str, Any] = {"auto_rollback": auto}
        for key in ("severities", "alertnames"):
            if key in raw:
                items = raw[key]
                if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
                    raise InvalidInput(f"{field}.{key} must be a list of names", field=f"{field}.{key}")
                values[key] = frozenset(items)
        if "severities" in values and not values["severities"]:
            raise InvalidInput(f"{field}.severities must not be empty", field=f"{field}.severities")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "auto_rollback": self.auto_rollback,
            "severities": sorted(self.severities),
            "alertnames": sorted(self.alertnames),
        }


DEFAULT_POLICY = AlertPolicy()


# ------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class IgnoredAlert:
    fingerprint: str
    alertname: str
    deployment: str | None
    reason: str


@dataclass(frozen=True)
class AlertDecisions:
    intents: tuple[RollbackIntent, ...] = ()  # record each with request_rollback (conditional write)
    ignored: tuple[IgnoredAlert, ...] = field(default=())


def decide_alert_actions(
    alerts: Iterable[Alert],
    policies: Mapping[str, AlertPolicy],
    deployments: Mapping[str, RolloutStatus],
    already_handled: Collection[str],
    *,
    now: datetime,
) -> AlertDecisions:
    """Firing + the deployment's policy matches + a version that is serving → one rollback intent.

    `deployments` is the recorded rollout status per deployment name (the current one);
    `policies` falls back to DEFAULT_POLICY (severity=critical, any alert name);
    `already_handled` holds idempotency keys (`Alert.idempotency_key`) recorded earlier."""
    intents: dict[str, RollbackIntent] = {}
    ignored: list[IgnoredAlert] = []
    seen: set[str] = set()
    for alert in alerts:
        reason = _why_not(alert, policies, deployments, already_handled, seen, intents)
        seen.add(alert.idempotency_key)
        if reason:
            ignored.append(IgnoredAlert(alert.fingerprint, alert.name, alert.deployment, reason))
            continue
        deployment = alert.deployment
        assert deployment is not None
        status = deployments[deployment]
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        version = alert.labels.get("version")
        intents[deployment] = RollbackIntent(
            deployment=deployment,
            source=IntentSource.ALERT,
            key=alert.idempotency_key,
            reason=(
                f"alert {alert.name or '(unnamed)'} ({alert.severity}) firing"
                + (f" for v{version}" if version else f" for v{status.active_version}")
                + (f": {summary}" if summary else "")
            ),
            requested_at=now,
            labels=dict(alert.labels),
        )
    return AlertDecisions(tuple(intents.values()), tuple(ignored))


def _why_not(
    alert: Alert,
    policies: Mapping[str, AlertPolicy],
    deployments: Mapping[str, RolloutStatus],
    already_handled: Collection[str],
    seen_in_batch: set[str],
    intents: Mapping[str, RollbackIntent],
) -> str:
    if alert.status is AlertStatus.RESOLVED:
        return "resolved: nothing to do"
    if alert.idempotency_key in already_handled or alert.idempotency_key in seen_in_batch:
        return "duplicate delivery: already handled"
    deployment = alert.deployment
    if deployment is None:
        return "no deployment label"
    status = deployments.get(deployment)
    if status is None:
        return f"unknown deployment {deployment!r}"
    policy = policies.get(deployment, DEFAULT_POLICY)
    if not policy.matches(alert):
        return f"policy of {deployment} {policy.describe()}; this is {alert.name} with severity {alert.severity!r}"
    if status.intent is not None and status.intent.key == alert.idempotency_key:
        return "duplicate delivery: already recorded on the rollout"
    if deployment in intents:
        return f"{deployment}: another alert in this delivery already requests the rollback"
    if not status.phase.accepts_rollback or status.intent is not None:
        cause = f" ({status.intent.describe()})" if status.intent else ""
        return f"{deployment} is {status.phase.value}{cause}: a rollback is already under way or done"
    target = status.rollback_target
    if target is None:
        return f"{deployment} has no previous version to roll back to"
    version_label = alert.labels.get("version")
    if version_label is not None:
        if not (version_label.isascii() and version_label.isdigit()):
            return f"version label {version_label!r} is not a version number"
        version = int(version_label)
        if version == target:
            return f"v{version} is the rollback target itself; rolling back cannot help"
        if version not in status.serving_versions:
            serving = ", ".join(f"v{v}" for v in sorted(status.serving_versions)) or "none"
            return f"v{version} is not serving (serving: {serving})"
    return ""
