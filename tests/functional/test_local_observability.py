"""The local Prometheus and Alertmanager (the real Debian binaries) over the local serving runtime:
a model server is scraped through the PodMonitor's relabelings (deployment from its pod label), and
a fault injected into it fires the error ratio alert, which Alertmanager, loaded with the deployed
rendering of dashboards/alertmanager.yml, publishes to an SNS topic of moto's server, SigV4-signed."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from control.errors import DependencyError
from control.local.observability import LocalObservability
from control.local.processes import free_port, process_alive
from control.local.serving import LocalServing
from control.manifests.serving import render_deployment, render_service
from tests.functional.test_local_serving import CONFIG, ROOT, Load, router_port, serving_version, wait_ready
from tests.support import wait_for

REGION = "us-east-1"
needs_binaries = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
    reason="the Debian packages prometheus and prometheus-alertmanager are not installed",
)


class SnsStandIn(ThreadingHTTPServer):
    """moto's SNS with a topic, behind a pass-through that records every Publish moto accepted:
    (arrival time, Authorization header, form fields). While `refuse_with` holds a status code it
    answers that instead (SNS in trouble), forwards nothing and counts `refused`."""

    daemon_threads = True

    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url
        self.publishes: list[tuple[float, str, dict[str, str]]] = []
        self.refuse_with: int | None = None
        self.refused = 0
        sns = boto3.client(
            "sns",
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.topic_arn: str = sns.create_topic(Name=f"obs-{uuid.uuid4().hex[:8]}-alerts")["TopicArn"]
        super().__init__(("127.0.0.1", 0), _PassThrough)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def messages(self) -> list[tuple[float, dict[str, Any]]]:
        return [(arrived, json.loads(form["Message"])) for arrived, _, form in list(self.publishes)]

    def firing(self, alertname: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (arrived, alert)
            for arrived, body in self.messages()
            for alert in body.get("alerts", [])
            if alert["status"] == "firing" and alert["labels"].get("alertname") == alertname
        ]

    def signers(self) -> set[str]:
        """The SigV4 credential scope of every Publish: access key/date/region/service/aws4_request."""
        scopes = [auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") for _, auth, _ in self.publishes]
        return {f"{scope[0]}/{scope[2]}/{scope[3]}" for scope in scopes}


class _PassThrough(BaseHTTPRequestHandler):
    server: SnsStandIn

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.refuse_with is not None:
            self.server.refused += 1
            self.send_response(self.server.refuse_with)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        reply = requests.post(self.server.moto_url + self.path, data=body, headers=headers, timeout=10)
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if reply.status_code == 200 and form.get("Action") == "Publish":
            self.server.publishes.append((time.monotonic(), self.headers.get("Authorization", ""), form))
        self.send_response(reply.status_code)
        self.send_header("Content-Type", reply.headers.get("Content-Type", "text/xml"))
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)


@pytest.fixture
def sns() -> Iterator[SnsStandIn]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    port = moto._server.server_port  # type: ignore[union-attr]
    server = SnsStandIn(f"http://127.0.0.1:{port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    moto.stop()


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


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        result: list[dict[str, Any]] = json.loads(reply.read())["data"]["result"]
        return result


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
        assert groups[0]["interval"] == 1
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


@contextlib.contextmanager
def iris_observed(tmp_path: Path, sns: SnsStandIn) -> Iterator[tuple[LocalServing, LocalObservability]]:
    """A ready model server (iris v1 behind its router), scraped by the real Prometheus, whose
    Alertmanager publishes to `sns`; both stopped on exit."""
    serving = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=10.0)
    watching = LocalObservability(
        tmp_path / "observability",
        serving_targets_file=serving.targets_file,
        training_targets_file=tmp_path / "training-targets.json",
        alerts_topic_arn=sns.topic_arn,
        region=REGION,
        sns_api_url=sns.url,
    )
    try:
        serving.apply(render_deployment(serving_version(tmp_path, 1), CONFIG))
        serving.apply(render_service("iris", 1, CONFIG))
        watching.start()
        wait_ready(serving, "iris-v1")
        yield serving, watching
    finally:
        watching.stop()
        serving.stop_all()


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
