"""The local Prometheus and Alertmanager (the real Debian binaries) over the local serving runtime:
a model server is scraped with its deployment label, and a fault injected into it fires the error
ratio alert, which Alertmanager delivers to a webhook with the bearer token."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from control.errors import DependencyError
from control.kubernetes.serving import render_deployment, render_service
from control.local.cluster import process_alive
from control.local.observability import LocalObservability
from control.local.serving import LocalServing
from tests.functional.test_local_serving import CONFIG, ROOT, Load, router_port, serving_version, wait_ready
from tests.support import wait_for

TOKEN = "local-alert-token"
needs_binaries = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
    reason="the Debian packages prometheus and prometheus-alertmanager are not installed",
)


class Catcher(ThreadingHTTPServer):
    """Records every webhook delivery: (arrival time, Authorization header, JSON body). While
    `refuse_with` holds a status code it answers that instead, records nothing, counts `refused`."""

    daemon_threads = True

    def __init__(self) -> None:
        self.deliveries: list[tuple[float, str, dict[str, Any]]] = []
        self.refuse_with: int | None = None
        self.refused = 0
        super().__init__(("127.0.0.1", 0), _CatcherHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts/alertmanager"

    def firing(self, alertname: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (arrived, alert)
            for arrived, _, body in list(self.deliveries)
            for alert in body.get("alerts", [])
            if alert["status"] == "firing" and alert["labels"].get("alertname") == alertname
        ]


class _CatcherHandler(BaseHTTPRequestHandler):
    server: Catcher

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        refuse = self.server.refuse_with
        if refuse is None:
            self.server.deliveries.append((time.monotonic(), self.headers.get("Authorization", ""), body))
        else:
            self.server.refused += 1
        self.send_response(refuse or 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    server = Catcher()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        result: list[dict[str, Any]] = json.loads(reply.read())["data"]["result"]
        return result


def test_missing_binary_names_the_debian_package(tmp_path: Path) -> None:
    observability = LocalObservability(
        tmp_path / "obs",
        serving_targets_file=tmp_path / "serving.json",
        training_targets_file=tmp_path / "training.json",
        webhook_url="http://127.0.0.1:9/alerts",
        webhook_token=TOKEN,
        alertmanager_binary="no-such-alertmanager",
    )
    with pytest.raises(DependencyError, match="prometheus-alertmanager"):
        observability.start()


@needs_binaries
def test_configs_and_processes(tmp_path: Path) -> None:
    state = tmp_path / "obs"
    observability = LocalObservability(
        state,
        serving_targets_file=tmp_path / "serving.json",
        training_targets_file=tmp_path / "training.json",
        webhook_url="http://127.0.0.1:9/alerts",
        webhook_token=TOKEN,
    ).start()
    try:
        assert (state / "alert-token").read_text() == TOKEN
        assert (state / "alert-token").stat().st_mode & 0o777 == 0o600
        assert json.loads((tmp_path / "training.json").read_text()) == []
        with urllib.request.urlopen(observability.prometheus_url + "/api/v1/rules", timeout=5) as reply:
            groups = json.loads(reply.read())["data"]["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert rules["MlcpInferenceHighErrorRatio"]["duration"] == 5
        assert groups[0]["interval"] == 1
        with urllib.request.urlopen(observability.alertmanager_url + "/api/v2/status", timeout=5) as reply:
            assert "control-plane-webhook" in json.loads(reply.read())["config"]["original"]
        again = LocalObservability(
            state,
            serving_targets_file=tmp_path / "serving.json",
            training_targets_file=tmp_path / "training.json",
            webhook_url="http://127.0.0.1:9/alerts",
            webhook_token=TOKEN,
        ).start()  # already running: reloaded, not started twice
        assert again.prometheus_url == observability.prometheus_url
    finally:
        processes = json.loads((state / "processes.json").read_text())
        observability.stop()
    assert not any(process_alive(p["pid"], p["start"]) for p in processes.values())


@contextlib.contextmanager
def iris_observed(tmp_path: Path, catcher: Catcher) -> Iterator[tuple[LocalServing, LocalObservability]]:
    """A ready model server (iris v1 behind its router), scraped by the real Prometheus, whose
    Alertmanager delivers to `catcher`; both stopped on exit."""
    serving = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=10.0)
    observability = LocalObservability(
        tmp_path / "observability",
        serving_targets_file=serving.targets_file,
        training_targets_file=tmp_path / "training-targets.json",
        webhook_url=catcher.url,
        webhook_token=TOKEN,
    )
    try:
        serving.apply(render_deployment(serving_version(tmp_path, 1), CONFIG))
        serving.apply(render_service("iris", 1, CONFIG))
        observability.start()
        wait_ready(serving, "iris-v1")
        yield serving, observability
    finally:
        observability.stop()
        serving.stop_all()


@needs_binaries
@pytest.mark.slow
def test_fault_fires_the_error_ratio_alert_and_alertmanager_delivers_it(tmp_path: Path, catcher: Catcher) -> None:
    with iris_observed(tmp_path, catcher) as (serving, observability):
        up = 'up{job="mlcp-serving", deployment="iris", model="iris", version="1", namespace="ml-serving"}'
        wait_for(
            lambda: [s for s in query(observability.prometheus_url, up) if s["value"][1] == "1"],
            30,
            0.25,
            "Prometheus to scrape the model server",
        )
        with Load(router_port(serving, "iris"), clients=1, pause=0.02):
            time.sleep(3)  # a few scrapes of healthy traffic first
            assert not catcher.firing("MlcpInferenceHighErrorRatio")
            fault_at = time.monotonic()
            serving.fault("iris-v1", error_ratio=1.0)
            fired = wait_for(
                lambda: catcher.firing("MlcpInferenceHighErrorRatio"), 30, 0.05, "the error ratio alert webhook"
            )
        arrived, alert = fired[0]
        print(f"\nfault -> webhook: {arrived - fault_at:.1f} s")
        assert {k: alert["labels"][k] for k in ("deployment", "model", "version", "namespace", "severity")} == {
            "deployment": "iris",
            "model": "iris",
            "version": "1",
            "namespace": "ml-serving",
            "severity": "critical",
        }
        assert {auth for _, auth, _ in catcher.deliveries} == {f"Bearer {TOKEN}"}
