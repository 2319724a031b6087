"""Alerts reach the control plane two ways, as in AWS: Alertmanager's webhook to the API, and its
sns_configs to the SNS topic the functions subscribe to. Both decide the same way."""

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import requests

from control.adapters.aws import client
from control.adapters.dynamodb_deployments import DeploymentRecord, DynamoDbDeployments
from control.domain.rollout import Phase, RolloutSpec, start_rollout
from tests.support import wait_for

EVENTS = Path(__file__).resolve().parents[1] / "events"


def completed_deployment(endpoints, name: str) -> DynamoDbDeployments:
    """A deployment that finished rolling v2 out over v1: an alert now means 'roll back to v1'."""
    store = DynamoDbDeployments(
        client("dynamodb", endpoints["region"], endpoints["aws_endpoint_url"]), endpoints["registry_table"]
    )
    spec = RolloutSpec(deployment=name, model="iris", version=2, previous_version=1)
    status = start_rollout(spec, datetime.now(UTC))
    status = replace(status, phase=Phase.COMPLETED, active_version=2)
    store.put(DeploymentRecord(spec, status), expected_revision=None)
    return store


def firing_payload(deployment: str) -> dict:
    payload = json.loads((EVENTS / "alertmanager_v4_firing.json").read_text())
    for alert in payload["alerts"]:
        alert["labels"] |= {"deployment": deployment, "version": "2", "severity": "critical"}
        alert["fingerprint"] = uuid.uuid4().hex[:16]
    payload["commonLabels"] |= {"deployment": deployment}
    return payload


def test_an_alert_published_to_sns_records_a_rollback(aws, endpoints):
    deployment = f"sns-{uuid.uuid4().hex[:6]}"
    store = completed_deployment(endpoints, deployment)
    aws("sns").publish(TopicArn=endpoints["alerts_topic_arn"], Message=json.dumps(firing_payload(deployment)))
    record = wait_for(lambda: (r := store.get(deployment)).status.intent and r, timeout=20, what="the intent")
    assert record.status.intent.source.value == "alert"
    assert "firing" in record.status.intent.reason


def test_a_plain_text_sns_message_is_dead_lettered(aws, endpoints):
    marker = uuid.uuid4().hex
    aws("sns").publish(TopicArn=endpoints["alerts_topic_arn"], Message=f"[FIRING:1] not json {marker}")
    sqs = aws("sqs")

    def letters():
        messages = sqs.receive_message(
            QueueUrl=endpoints["dead_letter_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages if marker in m["Body"]]

    [letter] = wait_for(letters, timeout=20, what="the dead letter")
    assert letter["source"] == "alertmanager-sns" and letter["error"] == "InvalidInput"


def test_the_webhook_needs_the_alert_token_not_the_api_token(platform, endpoints):
    deployment = f"hook-{uuid.uuid4().hex[:6]}"
    completed_deployment(endpoints, deployment)
    url = endpoints["api_url"] + "/alerts/alertmanager"
    body = firing_payload(deployment)
    assert requests.post(url, json=body, timeout=30).status_code == 401
    with_api_token = requests.post(
        url, json=body, headers={"Authorization": f"Bearer {endpoints['api_token']}"}, timeout=30
    )
    assert with_api_token.status_code == 401
    right = requests.post(url, json=body, headers={"Authorization": f"Bearer {platform.alert_token}"}, timeout=30)
    assert right.status_code == 200, right.text
    assert right.json()["rollbacks"][0]["deployment"] == deployment
    again = requests.post(url, json=body, headers={"Authorization": f"Bearer {platform.alert_token}"}, timeout=30)
    assert again.json()["rollbacks"] == []  # the same firing delivered twice acts once


def test_a_malformed_webhook_payload_is_400_and_dead_lettered(platform, endpoints):
    url = endpoints["api_url"] + "/alerts/alertmanager"
    response = requests.post(
        url, data=b'{"version": "3"}', headers={"Authorization": f"Bearer {platform.alert_token}"}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"] == "InvalidInput"
