"""Alertmanager v4 payloads (webhook and SNS) and the decision which alerts roll a deployment back.

The fixtures under tests/events/ were captured from a real Alertmanager 0.25: the webhook bodies
as POSTed, the SNS Message as sent in its Publish call (rendered by the `sns.json` template),
wrapped in the Lambda SNS event envelope."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from control.domain.alert_payload import (
    MAX_ALERTS_PER_PAYLOAD,
    AlertStatus,
    parse_sns_event,
    parse_sns_message,
    parse_webhook,
)
from control.domain.alert_policy import AlertPolicy, decide_alert_actions
from control.domain.rollout import (
    IntentSource,
    Phase,
    RolloutSpec,
    RolloutStatus,
    ServiceRole,
    SwitchSelector,
    request_rollback,
    start_rollout,
)
from control.errors import InvalidInput, PayloadTooLarge

EVENTS = Path(__file__).resolve().parents[1] / "events"
NOW = datetime(2026, 11, 26, 18, 55, tzinfo=UTC)


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def status_of(deployment: str, phase: Phase, *, version: int = 2, previous: int | None = 1) -> RolloutStatus:
    spec = RolloutSpec(deployment, "iris", version, previous)
    status = replace(start_rollout(spec, NOW), phase=phase, preview_version=version)
    if phase in (Phase.BAKING, Phase.SCALING_DOWN_OLD, Phase.COMPLETED):
        status = replace(status, active_version=version)
    if phase is Phase.COMPLETED:
        status = replace(status, stable_version=version)
    return status


FIRING = parse_webhook((EVENTS / "alertmanager_v4_firing.json").read_bytes())
RESOLVED = parse_webhook((EVENTS / "alertmanager_v4_resolved.json").read_bytes())
GROUPED = parse_webhook((EVENTS / "alertmanager_v4_grouped.json").read_bytes())


# ------------------------------------------------------------------------------------- parsing


def test_a_firing_webhook_payload_parses_into_typed_values() -> None:
    assert (FIRING.version, FIRING.status, FIRING.receiver) == ("4", AlertStatus.FIRING, "mlcp-webhook")
    assert FIRING.group_key == '{}/{}:{deployment="iris-classifier"}' and FIRING.truncated_alerts == 0
    (alert,) = FIRING.alerts
    assert alert.name == "InferenceErrorRatioHigh" and alert.severity == "critical"
    assert alert.deployment == "iris-classifier" and alert.labels["version"] == "2"
    assert alert.starts_at == datetime(2026, 11, 26, 18, 54, 10, 84418, tzinfo=UTC)
    assert alert.ends_at is None  # Go's zero time while firing
    assert alert.fingerprint == "fdd8571c56bbfe43"
    assert alert.annotations["summary"] == "Error ratio above 5%"


def test_a_resolved_payload_keeps_the_fingerprint_and_start_and_has_an_end() -> None:
    (alert,) = RESOLVED.alerts
    assert RESOLVED.status is AlertStatus.RESOLVED and alert.status is AlertStatus.RESOLVED
    assert alert.idempotency_key == FIRING.alerts[0].idempotency_key
    assert alert.ends_at is not None and alert.ends_at > alert.starts_at


def test_a_grouped_payload_carries_both_alerts_of_the_group() -> None:
    assert [a.name for a in GROUPED.alerts] == ["InferenceErrorRatioHigh", "InferenceLatencyP99High"]
    assert GROUPED.group_labels == {"deployment": "fraud-scorer"}
    assert len({a.fingerprint for a in GROUPED.alerts}) == 2


@pytest.mark.parametrize(
    ("sns_file", "webhook"),
    [("alertmanager_sns_event_firing.json", FIRING), ("alertmanager_sns_event_grouped.json", GROUPED)],
)
def test_the_sns_message_carries_the_same_alerts_as_the_webhook(sns_file, webhook) -> None:
    (payload,) = parse_sns_event(event(sns_file))
    assert payload.receiver == "mlcp-sns" and payload.group_key == ""  # no GroupKey in template data
    assert [(a.fingerprint, a.status, a.labels, a.annotations, a.starts_at, a.ends_at) for a in payload.alerts] == [
        (a.fingerprint, a.status, a.labels, a.annotations, a.starts_at, a.ends_at) for a in webhook.alerts
    ]


def test_an_sns_http_notification_and_go_default_times_are_accepted() -> None:
    message = json.loads(event("alertmanager_sns_event_firing.json")["Records"][0]["Sns"]["Message"])
    message["alerts"][0]["startsAt"] = "2026-11-26 18:54:10.084418123 +0000 UTC"
    del message["version"]
    (payload,) = parse_sns_event({"Type": "Notification", "Message": json.dumps(message)})
    assert payload.alerts[0].starts_at == FIRING.alerts[0].starts_at
    with pytest.raises(InvalidInput) as error:  # the webhook is strict about both
        parse_webhook({**message, "version": "4", "groupKey": "g"})
    assert error.value.field == "alerts[0].startsAt"


def test_the_default_text_sns_message_is_refused_with_the_fix() -> None:
    text = "Alerts Firing:\nLabels:\n - alertname = InferenceErrorRatioHigh\n"
    sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": text}}]}
    with pytest.raises(InvalidInput, match="sns.json") as error:
        parse_sns_event(sns)
    assert error.value.field == "Records[0].Sns.Message"
    with pytest.raises(InvalidInput):
        parse_sns_message(text)


def firing_body() -> dict:
    return json.loads((EVENTS / "alertmanager_v4_firing.json").read_text())


def mutated(path: str, value: object) -> dict:
    body = firing_body()
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return body


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("version", DELETE, "version"),
        ("version", "3", "version"),
        ("status", "pending", "status"),
        ("receiver", DELETE, "receiver"),
        ("alerts", {"a": 1}, "alerts"),
        ("truncatedAlerts", -1, "truncatedAlerts"),
        ("groupKey", 7, "groupKey"),
        ("alerts.0.fingerprint", DELETE, "alerts[0].fingerprint"),
        ("alerts.0.status", "FIRING", "alerts[0].status"),
        ("alerts.0.labels", DELETE, "alerts[0].labels"),
        ("alerts.0.labels.severity", 5, "alerts[0].labels.severity"),
        ("alerts.0.annotations", [], "alerts[0].annotations"),
        ("alerts.0.startsAt", "yesterday", "alerts[0].startsAt"),
        ("alerts.0.startsAt", DELETE, "alerts[0].startsAt"),
        ("alerts.0.endsAt", "2026-13-40T00:00:00Z", "alerts[0].endsAt"),
    ],
)
def test_malformed_payloads_name_the_bad_field(path: str, value: object, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_webhook(json.dumps(mutated(path, value)))
    assert error.value.field == field and error.value.http_status == 400


def test_oversized_payloads_are_refused_as_too_large() -> None:
    body = firing_body()
    body["alerts"] = body["alerts"] * (MAX_ALERTS_PER_PAYLOAD + 1)
    with pytest.raises(PayloadTooLarge) as error:
        parse_webhook(body)
    assert error.value.field == "alerts" and error.value.http_status == 413
    with pytest.raises(PayloadTooLarge):
        parse_webhook(b"{" + b" " * (1024 * 1024) + b"}")


@pytest.mark.parametrize("body", [b"not json", b"[]", '"a string"', b"\xff\xfe"])
def test_bodies_that_are_not_a_json_object_are_invalid(body) -> None:
    with pytest.raises(InvalidInput):
        parse_webhook(body)


# ------------------------------------------------------------------------------------ decision


def decide(payload, deployments, handled=(), policies=None):
    return decide_alert_actions(payload.alerts, policies or {}, deployments, set(handled), now=NOW)


def test_a_critical_alert_for_the_green_version_during_the_bake_requests_a_rollback() -> None:
    decisions = decide(FIRING, {"iris-classifier": status_of("iris-classifier", Phase.BAKING)})
    (intent,) = decisions.intents
    assert intent.deployment == "iris-classifier" and intent.source is IntentSource.ALERT
    assert intent.key == FIRING.alerts[0].idempotency_key
    assert intent.reason == "alert InferenceErrorRatioHigh (critical) firing for v2: Error ratio above 5%"
    assert intent.labels["alertname"] == "InferenceErrorRatioHigh" and intent.requested_at == NOW


def test_an_alert_after_the_rollout_completed_still_rolls_back() -> None:
    decisions = decide(FIRING, {"iris-classifier": status_of("iris-classifier", Phase.COMPLETED)})
    assert len(decisions.intents) == 1


def test_an_alert_for_the_preview_under_analysis_aborts_the_rollout() -> None:
    from control.domain.rollout import ScaleDeployment, VersionObservation
    from tests.support.rollout_harness import Cluster, at, make_spec, step

    spec = make_spec(deployment="iris-classifier")
    status = replace(
        status_of("iris-classifier", Phase.PRE_PROMOTION_ANALYSIS), phase_entered_at=at(0), started_at=at(0)
    )
    cluster = Cluster(deployments={1: VersionObservation(2, 2), 2: VersionObservation(2, 2)}, active=1, preview=2)
    (intent,) = decide(FIRING, {"iris-classifier": status}).intents
    aborted = step(spec, request_rollback(status, intent), cluster, at(10))
    assert aborted.status.phase is Phase.ROLLING_BACK
    assert ScaleDeployment(2, 0) in aborted.actions  # the preview goes away ...
    assert not [a for a in aborted.actions if isinstance(a, SwitchSelector) and a.service is ServiceRole.ACTIVE]
    final = step(spec, aborted.status, cluster, at(15)).status
    assert final.phase is Phase.ROLLED_BACK and final.active_version == 1  # ... and v2 never served
    assert cluster.active == 1 and cluster.deployments[2].desired == 0
    assert final.intent is not None and final.intent.key == intent.key


def test_duplicate_deliveries_are_no_ops() -> None:
    deployments = {"iris-classifier": status_of("iris-classifier", Phase.BAKING)}
    key = FIRING.alerts[0].idempotency_key
    handled = decide(FIRING, deployments, handled={key})
    assert handled.intents == () and "duplicate" in handled.ignored[0].reason
    twice = decide_alert_actions(FIRING.alerts * 2, {}, deployments, set(), now=NOW)  # the HA pair, in one go
    assert len(twice.intents) == 1 and "duplicate" in twice.ignored[0].reason
    recorded = {"iris-classifier": request_rollback(deployments["iris-classifier"], twice.intents[0])}
    assert request_rollback(recorded["iris-classifier"], twice.intents[0]) == recorded["iris-classifier"]
    again = decide(FIRING, recorded)
    assert again.intents == () and "duplicate" in again.ignored[0].reason


def test_a_resolved_alert_does_nothing() -> None:
    decisions = decide(RESOLVED, {"iris-classifier": status_of("iris-classifier", Phase.BAKING)})
    assert decisions.intents == () and decisions.ignored[0].reason.startswith("resolved")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (status_of("iris-classifier", Phase.ROLLED_BACK), "already under way or done"),
        (status_of("iris-classifier", Phase.COMPLETED, version=4, previous=3), "v2 is not serving (serving: v4)"),
        (status_of("iris-classifier", Phase.BAKING, version=3, previous=2), "the rollback target itself"),
        (status_of("iris-classifier", Phase.COMPLETED, previous=None), "no previous version"),
    ],
)
def test_alerts_that_a_rollback_cannot_help_are_ignored_with_a_reason(status, reason) -> None:
    decisions = decide(FIRING, {"iris-classifier": status})
    assert decisions.intents == () and reason in decisions.ignored[0].reason


def test_unknown_deployments_and_alerts_without_one_are_ignored() -> None:
    assert "unknown deployment" in decide(FIRING, {}).ignored[0].reason
    unlabelled = replace(FIRING.alerts[0], labels={"alertname": "Watchdog", "severity": "critical"})
    decisions = decide_alert_actions([unlabelled], {}, {}, set(), now=NOW)
    assert decisions.ignored[0].reason == "no deployment label"


def test_the_policy_decides_which_alerts_roll_back() -> None:
    deployments = {"fraud-scorer": status_of("fraud-scorer", Phase.BAKING, version=7, previous=6)}
    default = decide(GROUPED, deployments)
    assert [i.labels["alertname"] for i in default.intents] == ["InferenceErrorRatioHigh"]
    assert "severity 'warning'" in default.ignored[0].reason  # the p99 alert is only a warning

    latency_only = AlertPolicy.parse({"severities": ["warning", "critical"], "alertnames": ["InferenceLatencyP99High"]})
    chosen = decide(GROUPED, deployments, policies={"fraud-scorer": latency_only})
    assert [i.labels["alertname"] for i in chosen.intents] == ["InferenceLatencyP99High"]

    both = AlertPolicy(severities=frozenset({"warning", "critical"}))
    one = decide(GROUPED, deployments, policies={"fraud-scorer": both})
    assert len(one.intents) == 1 and "another alert in this delivery" in one.ignored[0].reason

    off = decide(GROUPED, deployments, policies={"fraud-scorer": AlertPolicy(auto_rollback=False)})
    assert off.intents == () and all("automatic rollback is off" in i.reason for i in off.ignored)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "alert_policy"),
        ({"auto_rollback": "yes"}, "alert_policy.auto_rollback"),
        ({"severities": []}, "alert_policy.severities"),
        ({"alertnames": "HighErrors"}, "alert_policy.alertnames"),
        ({"sevrities": ["critical"]}, "alert_policy.sevrities"),
    ],
)
def test_bad_policies_name_the_field(raw, field) -> None:
    with pytest.raises(InvalidInput) as error:
        AlertPolicy.parse(raw)
    assert error.value.field == field


def test_policy_round_trips() -> None:
    policy = AlertPolicy(severities=frozenset({"critical", "page"}), alertnames=frozenset({"A"}))
    assert AlertPolicy.parse(policy.to_dict()) == policy and AlertPolicy.parse(None) == AlertPolicy()


# --------------------------------------------------------------- from alert to traffic on blue


def test_an_alert_after_completion_moves_traffic_back_through_the_reconcile_step() -> None:
    from control.domain.rollout import VersionObservation
    from tests.support.rollout_harness import Cluster, at, make_spec, step

    spec = make_spec(deployment="iris-classifier")
    status = replace(status_of("iris-classifier", Phase.COMPLETED), phase_entered_at=at(0), started_at=at(0))
    cluster = Cluster(deployments={1: VersionObservation(2, 2), 2: VersionObservation(2, 2)}, active=2)
    (intent,) = decide(FIRING, {"iris-classifier": status}).intents
    decision = step(spec, request_rollback(status, intent), cluster, at(10))
    assert SwitchSelector(ServiceRole.ACTIVE, 1) in decision.actions
    assert "alert fdd8571c56bbfe43@" in decision.status.reason
