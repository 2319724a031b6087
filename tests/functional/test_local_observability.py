"""The local Prometheus and Alertmanager (the real Debian binaries) over the local serving runtime:
a model server is scraped through the PodMonitor's relabelings (deployment from its pod label), and
a fault injected into it fires the error ratio alert, which Alertmanager, loaded with the deployed
rendering of dashboards/alertmanager.yml, publishes to an SNS topic of moto's server, SigV4-signed."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.errors import DependencyError
from control.local.observability import LocalObservability
from control.local.processes import process_alive
from tests.support import wait_for
from tests.support.observability import REGION, SnsStandIn, iris_observed, query, sns_stand_in
from tests.support.serving import Load, router_port

needs_binaries = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
    reason="the Debian packages prometheus and prometheus-alertmanager are not installed",
)


@pytest.fixture
def sns() -> Iterator[SnsStandIn]:
    with sns_stand_in() as server:
        yield server


def observability(state: Path, tmp_path: Path, sns_url: str, topic_arn: str, **kwargs: Any) -> LocalObservability:
    return LocalObservability(
        state,
        serving_targets_file=tmp_path / "serving.json",
        training_targets_file=tmp_path / "training.json",
        alerts_topic_arn=topic_arn,
        region=REGION,
        sns_api_url=sns_url,
        **kwargs,
    )


def test_missing_binary_names_the_debian_package(tmp_path: Path) -> None:
    missing = observability(
        tmp_path / "obs", tmp_path, "http://127.0.0.1:9", "arn:aws:sns:us-east-1:1:x", alertmanager_binary="no-such"
    )
    with pytest.raises(DependencyError, match="prometheus-alertmanager"):
        missing.start()


@needs_binaries
def test_configs_and_processes(tmp_path: Path) -> None:
    state = tmp_path / "obs"
    arn = "arn:aws:sns:us-east-1:123456789012:mlcp-local-alerts"
    started = observability(state, tmp_path, "http://127.0.0.1:9", arn).start()
    try:
        assert json.loads((tmp_path / "training.json").read_text()) == []
        with urllib.request.urlopen(started.prometheus_url + "/api/v1/rules", timeout=5) as reply:
            groups = json.loads(reply.read())["data"]["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert rules["MlcpInferenceHighErrorRatio"]["duration"] == 5
        assert groups[0]["interval"] == 0.5  # LOCAL_INTERVAL
        with urllib.request.urlopen(started.alertmanager_url + "/api/v2/status", timeout=5) as reply:
            loaded = json.loads(reply.read())["config"]["original"]
        assert "control-plane-sns" in loaded and arn in loaded and "webhook_configs" not in loaded
        again = observability(
            state, tmp_path, "http://127.0.0.1:9", arn
        ).start()  # running: reloaded, not started twice
        assert again.prometheus_url == started.prometheus_url
    finally:
        processes = json.loads((state / "processes.json").read_text())
        started.stop()
    assert not any(process_alive(p["pid"], p["start"]) for p in processes.values())


@needs_binaries
@pytest.mark.slow
def test_fault_fires_the_error_ratio_alert_and_alertmanager_publishes_it_to_sns(
    tmp_path: Path, sns: SnsStandIn
) -> None:
    with iris_observed(tmp_path, sns) as (serving, watching):
        # the PodMonitor's relabelings made these target labels from the pod's meta labels
        up = 'up{job="ml-serving/mlcp-inference", deployment="iris", namespace="ml-serving", pod=~"iris-v1-.+"}'
        wait_for(
            lambda: [s for s in query(watching.prometheus_url, up) if s["value"][1] == "1"],
            30,
            0.25,
            "Prometheus to scrape the model server",
        )
        with Load(router_port(serving, "iris"), clients=1, pause=0.02):
            time.sleep(3)  # a few scrapes of healthy traffic first
            served = (
                'mlcp_inference_requests_total{deployment="iris", model="iris", version="1", namespace="ml-serving"}'
            )
            assert query(watching.prometheus_url, served), "series lack the labels the rules aggregate by"
            assert not sns.firing("MlcpInferenceHighErrorRatio")
            fault_at = time.monotonic()
            serving.fault("iris-v1", error_ratio=1.0)
            fired = wait_for(lambda: sns.firing("MlcpInferenceHighErrorRatio"), 30, 0.05, "the alert on SNS")
        arrived, alert = fired[0]
        print(f"\nfault -> SNS: {arrived - fault_at:.1f} s")
        assert {k: alert["labels"][k] for k in ("deployment", "model", "version", "namespace", "severity")} == {
            "deployment": "iris",
            "model": "iris",
            "version": "1",
            "namespace": "ml-serving",
            "severity": "critical",
        }
        assert sns.signers() == {"testing/us-east-1/sns"}
        assert {form["TopicArn"] for _, _, form in sns.publishes} == {sns.topic_arn}
