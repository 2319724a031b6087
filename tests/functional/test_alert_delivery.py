"""Alerts reach the control plane as on AWS: Alertmanager's sns_configs publish to the SNS topic the
on_alert_notification function is subscribed to. The real Alertmanager binary, loaded with the
rendering terraform/addons deploys (endpoints pointed at the embedded AWS), turns a firing alert
into a rollback intent. The webhook route stays for self-managed Alertmanagers; both decide alike."""

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml

from control.adapters.aws import client
from control.adapters.dynamodb_deployments import DynamoDbDeployments
from control.domain.deployments import DeploymentRecord
from control.domain.rollout import Phase, RolloutSpec, start_rollout
from control.local.observability import SNS_CREDENTIALS
from control.local.processes import free_port
from dashboards.alertmanager import SNS_TEMPLATE_PATH, load_config
from tests.support import wait_for
from tests.support.alertmanager import addons_parameters
from tests.support.dead_letters import dead_letters

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


@contextlib.contextmanager
def aws_rendered_alertmanager(tmp_path: Path, endpoints) -> Iterator[str]:
    """prometheus-alertmanager with the config terraform/addons gives kube-prometheus-stack, but for
    the endpoints: the embedded topic, region and SNS endpoint; the template file where the chart
    mounts it is a copy in tmp_path. Yields its URL."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.fail("prometheus-alertmanager is not installed (Debian package; scripts/setup.sh)")
    (tmp_path / "config").mkdir()
    shutil.copy(SNS_TEMPLATE_PATH, tmp_path / "config" / SNS_TEMPLATE_PATH.name)
    parameters = addons_parameters() | {
        "alerts_topic_arn": endpoints["alerts_topic_arn"],
        "region": endpoints["region"],
        "sns_api_url": endpoints["aws_endpoint_url"],
        "template_files": str(tmp_path / "config" / "*.tmpl"),
    }
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(load_config(parameters)))
    port = free_port()
    with open(tmp_path / "alertmanager.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            env={**os.environ, **SNS_CREDENTIALS},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), timeout=20, what="Alertmanager to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("rendering", ["deployed (terraform/addons)", "the local runtime's"])
def test_a_firing_alert_given_to_alertmanager_becomes_a_rollback_intent(rendering, embedded, endpoints, tmp_path):
    deployment = f"am-{uuid.uuid4().hex[:6]}"
    store = completed_deployment(endpoints, deployment)
    alert = {
        "labels": {
            "alertname": "MlcpInferenceHighErrorRatio",
            "deployment": deployment,
            "model": "iris",
            "version": "2",
            "namespace": "ml-serving",
            "severity": "critical",
        },
        "annotations": {"summary": f"{deployment} v2: 100% of requests fail"},
        "startsAt": datetime.now(UTC).isoformat(),
    }
    with contextlib.ExitStack() as stack:
        if rendering.startswith("deployed"):
            url = stack.enter_context(aws_rendered_alertmanager(tmp_path, endpoints))
        else:
            url = endpoints["alertmanager_url"]
        assert requests.post(url + "/api/v2/alerts", json=[alert], timeout=10).status_code == 200
        # the deployed route waits 10 s (urgent_group_wait) before its first notification
        record = wait_for(lambda: (r := store.get(deployment)).status.intent and r, timeout=40, what="the intent")
    assert record.status.intent.source.value == "alert"
    assert "MlcpInferenceHighErrorRatio" in record.status.intent.reason


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

    def letters():
        return [d for d in dead_letters(aws("sqs"), endpoints["dead_letter_queue_url"]) if marker in d["payload"]]

    [letter] = wait_for(letters, timeout=20, what="the dead letter")
    assert letter["source"] == "alertmanager-sns" and letter["error"] == "InvalidInput"


def test_the_webhook_needs_the_alert_token_not_the_api_token(embedded, endpoints):
    deployment = f"hook-{uuid.uuid4().hex[:6]}"
    completed_deployment(endpoints, deployment)
    url = endpoints["api_url"] + "/alerts/alertmanager"
    body = firing_payload(deployment)
    assert requests.post(url, json=body, timeout=30).status_code == 401
    with_api_token = requests.post(
        url, json=body, headers={"Authorization": f"Bearer {endpoints['api_token']}"}, timeout=30
    )
    assert with_api_token.status_code == 401
    right = requests.post(url, json=body, headers={"Authorization": f"Bearer {embedded.alert_token}"}, timeout=30)
    assert right.status_code == 200, right.text
    assert right.json()["rollbacks"][0]["deployment"] == deployment
    again = requests.post(url, json=body, headers={"Authorization": f"Bearer {embedded.alert_token}"}, timeout=30)
    assert again.json()["rollbacks"] == []  # the same firing delivered twice acts once


def test_a_malformed_webhook_payload_is_400_and_dead_lettered(embedded, endpoints, aws):
    marker = uuid.uuid4().hex
    url = endpoints["api_url"] + "/alerts/alertmanager"
    body = json.dumps({"version": "3", "marker": marker}).encode()
    response = requests.post(url, data=body, headers={"Authorization": f"Bearer {embedded.alert_token}"}, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == "InvalidInput"
    # Alertmanager does not resend a 4xx: the payload must be in the dead-letter queue, with the reason.
    [letter] = [d for d in dead_letters(aws("sqs"), endpoints["dead_letter_queue_url"]) if marker in d["payload"]]
    assert letter["source"] == "alertmanager-webhook" and letter["error"] == "InvalidInput"
    assert letter["reason"] == response.json()["message"]
    assert json.loads(letter["payload"]) == body.decode()  # the body as it arrived
