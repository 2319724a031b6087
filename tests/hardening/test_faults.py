"""Faults injected, nothing lost.

- AWS throttling and 5xx, injected at the botocore layer (a `before-send` handler answers instead
  of the service for the first K calls) on DynamoDB, S3 and Step Functions: retried with backoff
  (botocore standard mode), then success; when it keeps failing, a TransientError naming the cause.
- Conditional-write conflicts: concurrent approve/reject of one version → one wins, the other 409,
  one history entry per successful change.
- Duplicate, reordered and late alerts through the running webhook route → one rollback intent
  and one history entry.
- Prometheus down → the analysis sample is inconclusive and nothing promotes.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from botocore.awsrequest import AWSResponse

from control.adapters.aws import client
from control.errors import PreconditionFailed, TransientError
from tests.support.lineage import lineage

# -- botocore fault injection ----------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


FAULTS = {
    "throttling": {
        "dynamodb": (
            400,
            {"content-type": "application/x-amz-json-1.0"},
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}',
        ),
        "s3": (
            503,
            {"content-type": "application/xml"},
            b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        ),
        "stepfunctions": (
            400,
            {"content-type": "application/x-amz-json-1.0"},
            b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
        ),
    },
    "5xx": {
        "dynamodb": (
            500,
            {"content-type": "application/x-amz-json-1.0"},
            b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}',
        ),
        "s3": (
            500,
            {"content-type": "application/xml"},
            b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
        ),
        "stepfunctions": (
            500,
            {"content-type": "application/x-amz-json-1.0"},
            b'{"__type":"InternalFailure","message":"boom"}',
        ),
    },
}


class Injector:
    """Answers the first `failures` sends of the client itself, with the fault; counts every send."""

    def __init__(self, aws_client: Any, service: str, fault: str, failures: int) -> None:
        self.status, self.headers, self.body = FAULTS[fault][service]
        self.failures = failures
        self.sends = 0
        aws_client.meta.events.register("before-send", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sends += 1
        if self.sends <= self.failures:
            return AWSResponse(request.url, self.status, self.headers, _Raw(self.body))
        return None


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """botocore's backoff delays, recorded and shortened tenfold so that the tests stay quick."""
    import time as real_time

    import botocore.endpoint

    recorded: list[float] = []

    class _Time:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            recorded.append(seconds)
            real_time.sleep(seconds / 10)

    monkeypatch.setattr(botocore.endpoint, "time", _Time())
    return recorded


@pytest.fixture(scope="module")
def dataset_key(endpoints: dict[str, Any]) -> str:
    key = f"datasets/fault-{uuid.uuid4().hex[:6]}/v1/data.csv"
    client("s3", endpoints["region"], endpoints["aws_endpoint_url"]).put_object(
        Bucket=endpoints["data_bucket"], Key=key, Body=b"x,label\n1,0\n"
    )
    return key


def _call(endpoints: dict[str, Any], service: str, key: str) -> tuple[Any, Any]:
    """A fresh client of the platform's own factory and one adapter call through it."""
    from control.adapters.dynamodb_deployments import DynamoDbDeployments
    from control.adapters.s3_store import S3Store
    from control.adapters.stepfunctions import StepFunctions

    made = client(service, endpoints["region"], endpoints["aws_endpoint_url"])
    if service == "dynamodb":
        return made, lambda: DynamoDbDeployments(made, endpoints["registry_table"]).get("no-such-deployment")
    if service == "s3":
        return made, lambda: S3Store(made).head(endpoints["data_bucket"], key)
    return made, lambda: StepFunctions(made).describe(
        endpoints["state_machines"]["rollout"].replace(":stateMachine:", ":execution:") + ":no-such-execution"
    )


@pytest.mark.parametrize(
    ("service", "fault"),
    [
        ("dynamodb", "throttling"),
        ("dynamodb", "5xx"),
        ("s3", "throttling"),
        ("s3", "5xx"),
        ("stepfunctions", "throttling"),
        ("stepfunctions", "5xx"),
    ],
)
def test_a_few_throttles_or_5xx_are_retried_with_backoff_and_the_call_succeeds(
    endpoints, sleeps, service, fault, ledger, dataset_key
):
    from control.errors import NotFound

    aws_client, call = _call(endpoints, service, dataset_key)
    injector = Injector(aws_client, service, fault, failures=2)
    try:
        call()  # the real answer after two faults
    except NotFound:
        assert service == "stepfunctions"  # describing an execution that does not exist: a real 400
    assert injector.sends == 3, "two faults, then the real answer"
    assert len(sleeps) == 2 and all(s >= 0 for s in sleeps), sleeps
    ledger.add("aws faults (retried)", faults_injected=2, requests_sent=3)


@pytest.mark.parametrize("service", ["dynamodb", "s3", "stepfunctions"])
def test_a_dependency_that_keeps_failing_surfaces_as_transient_error_with_the_cause(
    endpoints, sleeps, service, ledger, dataset_key
):
    from botocore.exceptions import ClientError

    aws_client, call = _call(endpoints, service, dataset_key)
    injector = Injector(aws_client, service, "throttling", failures=10**6)
    with pytest.raises(TransientError) as raised:
        call()
    assert injector.sends == 6, "botocore standard mode: the first attempt and max_attempts=5 retries"
    assert len(sleeps) == 5
    cause = {"dynamodb": "ThrottlingException", "s3": "SlowDown", "stepfunctions": "ThrottlingException"}[service]
    assert cause in raised.value.message, raised.value.message
    assert isinstance(raised.value.__cause__, ClientError) and raised.value.retryable
    ledger.add("aws faults (surfaced)", faults_injected=6, requests_sent=6)


def test_backoff_delays_have_jitter_and_grow(endpoints, sleeps, dataset_key):
    delays = []
    aws_client, call = _call(endpoints, "dynamodb", dataset_key)
    Injector(aws_client, "dynamodb", "5xx", failures=10**6)
    for _ in range(3):
        sleeps.clear()
        with pytest.raises(TransientError):
            call()
        delays.append(list(sleeps))
    assert len({tuple(d) for d in delays}) > 1, f"no jitter: {delays}"
    for attempt in range(5):  # full jitter: random in [0, 2**attempt]
        assert all(0 <= d[attempt] <= 2**attempt for d in delays), delays


# -- conditional-write conflicts --------------------------------------------------------------------


def _register(endpoints: dict[str, Any], model: str) -> Any:
    from control.adapters.dynamodb_registry import DynamoDbRegistry

    registry = DynamoDbRegistry(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )
    registry.register_version(model, lineage(model, f"{model}-run"), actor="test", now=datetime.now(UTC))
    return registry


def test_concurrent_approve_and_reject_one_wins_the_other_is_409_and_history_has_one_entry(endpoints, ledger):
    from control.domain.registry import VersionStatus

    model = f"race-{uuid.uuid4().hex[:6]}"
    registry = _register(endpoints, model)
    both_read = threading.Barrier(2)

    # Both deciders read REGISTERED before either writes: the conditional write must pick one.
    def wait_for_the_other(**_: Any) -> None:  # a handler's return value would replace the call's answer
        both_read.wait(10)

    registry._db.meta.events.register("before-call.dynamodb.TransactWriteItems", wait_for_the_other)
    results: dict[str, Any] = {}

    def decide(target: VersionStatus) -> None:
        try:
            results[target.value] = registry.set_status(
                model, 1, target, actor="t", reason=target.value, now=datetime.now(UTC)
            )
        except PreconditionFailed as error:
            results[target.value] = error

    threads = [threading.Thread(target=decide, args=(t,)) for t in (VersionStatus.APPROVED, VersionStatus.REJECTED)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    losers = [v for v in results.values() if isinstance(v, PreconditionFailed)]
    winners = [v for v in results.values() if not isinstance(v, PreconditionFailed)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0].http_status == 409
    assert registry.get_version(model, 1).status == winners[0].status
    changes = [e for e in registry.history(model) if e.action.startswith("status-")]
    assert [e.action for e in changes] == [f"status-{winners[0].status.value}"]
    ledger.add("conditional writes", faults_injected=1, requests_sent=2)


def test_many_concurrent_decisions_over_http_lose_no_update(endpoints, api, ledger):
    model = f"racehttp-{uuid.uuid4().hex[:6]}"
    registry = _register(endpoints, model)
    codes: list[int] = []
    decisions = ["approve", "reject"] * 5

    def call(decision: str) -> None:
        codes.append(api.post(f"/models/{model}/versions/1/{decision}", json={"reason": decision}).status_code)

    threads = [threading.Thread(target=call, args=(d,)) for d in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(codes) <= {200, 409}, codes
    changes = [e for e in registry.history(model) if e.action.startswith("status-")]
    real_changes = {e.action for e in changes}
    # Every change that happened is in the history once; a repeat of the current status is a no-op 200.
    assert len(changes) == len(real_changes) <= 2
    final = registry.get_version(model, 1).status.value
    assert changes[-1].action == f"status-{final}"
    ledger.add("conditional writes", requests_sent=len(decisions))


# -- duplicate, reordered and late alerts ------------------------------------------------------------


def _completed_deployment(embedded: Any, name: str, model: str) -> None:
    """v2 promoted and completed, v1 its previous version: an alert on v2 rolls back to v1."""
    from chalicelib.runtime import current_platform

    from control.domain.deployments import DeploymentRecord
    from control.domain.rollout import Phase, RolloutSpec, start_rollout

    now = datetime.now(UTC)
    spec = RolloutSpec.parse({"deployment": name, "model": model, "version": 2, "previous_version": 1, "replicas": 1})
    status = replace(
        start_rollout(spec, now - timedelta(minutes=5)),
        phase=Phase.COMPLETED,
        active_version=2,
        stable_version=2,
        promoted_at=now - timedelta(minutes=4),
    )
    current_platform().deployments.put(DeploymentRecord(spec, status), expected_revision=None)


def _alert(name: str, status: str, fingerprint: str, starts_at: str) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "mlcp",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "alerts": [
                {
                    "status": status,
                    "labels": {
                        "alertname": "MlcpInferenceHighErrorRatio",
                        "deployment": name,
                        "severity": "critical",
                        "version": "2",
                    },
                    "annotations": {"summary": "5xx ratio above 5%"},
                    "startsAt": starts_at,
                    "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-01T00:10:00Z",
                    "generatorURL": "http://prometheus",
                    "fingerprint": fingerprint,
                }
            ],
        }
    ).encode()


def _deliver(endpoints: dict[str, Any], embedded: Any, body: bytes) -> dict[str, Any]:
    response = requests.post(
        endpoints["api_url"] + "/alerts/alertmanager",
        data=body,
        timeout=30,
        headers={"Authorization": f"Bearer {embedded.alert_token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _rollback_requests(name: str, model: str) -> list[Any]:
    from chalicelib.runtime import current_platform

    return [
        e
        for e in current_platform().registry.history(model)
        if e.action == "rollback-requested" and e.details.get("deployment") == name
    ]


def test_an_ha_pair_delivering_the_same_firing_twice_and_a_late_duplicate_record_one_rollback(
    endpoints, embedded, ledger
):
    from chalicelib.runtime import current_platform

    suffix = uuid.uuid4().hex[:6]
    name, model = f"ha-{suffix}", f"ham-{suffix}"
    _completed_deployment(embedded, name, model)
    firing = _alert(name, "firing", f"fp{suffix}", "2026-01-01T00:00:00Z")
    answers: list[dict[str, Any]] = []
    pair = [threading.Thread(target=lambda: answers.append(_deliver(endpoints, embedded, firing))) for _ in range(2)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join(30)
    record = current_platform().deployments.get(name)
    assert record is not None and record.status.intent is not None
    late = _deliver(endpoints, embedded, firing)  # Alertmanager's repeat_interval, after the rollback began
    assert late["rollbacks"] == [] and "duplicate" in late["ignored"][0]["reason"] + "already", late
    # Both answers name the one intent (the loser of the conditional write finds it recorded).
    keys = {r["key"] for a in answers for r in a["rollbacks"]}
    assert keys == {record.status.intent.key}, answers
    assert len(_rollback_requests(name, model)) == 1
    assert current_platform().deployments.get(name).handled_alerts.count(record.status.intent.key) == 1
    ledger.add("alerts: duplicate/late", events_delivered=3, requests_sent=3, faults_injected=2)


def test_a_resolved_before_its_firing_starts_nothing_then_the_firing_rolls_back_once(endpoints, embedded, ledger):
    suffix = uuid.uuid4().hex[:6]
    name, model = f"ro-{suffix}", f"rom-{suffix}"
    _completed_deployment(embedded, name, model)
    resolved = _deliver(endpoints, embedded, _alert(name, "resolved", f"fp{suffix}", "2026-01-01T00:00:00Z"))
    assert resolved["rollbacks"] == [] and resolved["ignored"][0]["reason"].startswith("resolved")
    assert _rollback_requests(name, model) == []
    firing = _deliver(endpoints, embedded, _alert(name, "firing", f"fp{suffix}", "2026-01-01T00:00:00Z"))
    assert len(firing["rollbacks"]) == 1
    again = _deliver(endpoints, embedded, _alert(name, "resolved", f"fp{suffix}", "2026-01-01T00:00:00Z"))
    assert again["rollbacks"] == []
    assert len(_rollback_requests(name, model)) == 1
    ledger.add("alerts: reordered", events_delivered=3, requests_sent=3, faults_injected=1)


# -- Prometheus down ---------------------------------------------------------------------------------


def test_prometheus_down_makes_the_analysis_inconclusive_and_nothing_promotes():
    from control.adapters.prometheus import PrometheusQueries
    from control.composition import build_platform
    from control.domain.rollout import (
        Observed,
        Phase,
        RolloutSpec,
        ServiceRole,
        SwitchSelector,
        VersionObservation,
        reconcile,
        start_rollout,
    )
    from control.local.processes import free_port
    from control.settings import Settings
    from control.usecases.rollouts import _measure

    # Settings of its own (not what another test left in the environment): nothing listens on that port.
    dead = f"http://127.0.0.1:{free_port()}"
    platform = build_platform(
        Settings(region="us-east-1", data_bucket="d", artifacts_bucket="a", registry_table="t", prometheus_url=dead)
    )
    platform = replace(platform, metrics=PrometheusQueries(dead, timeout=1))
    now = datetime.now(UTC)
    spec = RolloutSpec.parse({"deployment": "pd", "model": "pd", "version": 2, "previous_version": 1, "replicas": 1})
    status = replace(
        start_rollout(spec, now - timedelta(seconds=60)),
        phase=Phase.PRE_PROMOTION_ANALYSIS,
        phase_entered_at=now - timedelta(seconds=60),
        preview_version=2,
    )
    sample = _measure(platform, spec, status)
    assert sample is not None and "Prometheus unreachable" in sample.error
    assert set(sample.values.values()) == {None}
    observed = Observed(
        deployments={1: VersionObservation(1, 1), 2: VersionObservation(1, 1)},
        active_selector=1,
        preview_selector=2,
        analysis=sample,
    )
    for seconds in (0, 10, 400):  # the inconclusive timeout (300 s) passes: it pauses, never promotes
        decision = reconcile(spec, status, observed, now + timedelta(seconds=seconds))
        switches = [a for a in decision.actions if isinstance(a, SwitchSelector) and a.service is ServiceRole.ACTIVE]
        assert switches == [] and decision.status.phase in (Phase.PRE_PROMOTION_ANALYSIS, Phase.PAUSED), decision
        status = decision.status
    assert status.phase is Phase.PAUSED and status.active_version == 1 and status.preview_version == 2
    assert "Prometheus unreachable" in status.reason
