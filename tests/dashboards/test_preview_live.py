"""dashboards/preview.py against a real Prometheus scraping a small exporter with the contract's metrics."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from control.local.processes import free_port
from dashboards.preview import render_previews
from dashboards.rules import render_rules
from tests.support.tools import require_binary


@pytest.fixture
def exporter() -> Iterator[int]:
    """A model-server-shaped exporter (docs/contracts.md names and labels), fed by a thread."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

    registry = CollectorRegistry()
    requests_total = Counter("mlcp_inference_requests", "", ["model", "version", "code"], registry=registry)
    duration = Histogram("mlcp_inference_request_duration_seconds", "", ["model", "version"], registry=registry)
    in_flight = Gauge("mlcp_inference_in_flight_requests", "", ["model", "version"], registry=registry)
    loaded = Gauge("mlcp_inference_model_loaded", "", ["model", "version"], registry=registry)
    predictions = Counter("mlcp_inference_predictions", "", ["model", "version", "class"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    rng = random.Random(7)

    def feed() -> None:
        for version in ("1", "2"):
            loaded.labels("iris", version).set(1)
        while not stop.is_set():
            for version, error_share in (("1", 0.0), ("2", 0.3)):
                for _ in range(20):
                    failed = rng.random() < error_share
                    requests_total.labels("iris", version, "500" if failed else "200").inc()
                    duration.labels("iris", version).observe(rng.uniform(0.005, 0.05 if version == "1" else 0.8))
                    predictions.labels("iris", version, str(rng.randrange(3))).inc()
                in_flight.labels("iris", version).set(rng.randrange(4))
            stop.wait(0.2)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    yield port
    stop.set()
    feeder.join(timeout=5)
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def prometheus(tmp_path: Path, exporter: int) -> Iterator[str]:
    binary = require_binary("prometheus")
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(local=True))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "inference",
                        "static_configs": [
                            {
                                "targets": [f"127.0.0.1:{exporter}"],
                                "labels": {"namespace": "ml-serving", "deployment": "iris"},
                            }
                        ],
                    }
                ],
            }
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("Prometheus did not become ready in 30 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_previews_draw_the_inference_panels_from_live_data(prometheus: str, tmp_path: Path) -> None:
    # Enough scrapes for the local [10s] windows and a few points on every curve.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        body = requests.get(
            f"{prometheus}/api/v1/query", params={"query": "mlcp_deployment:inference_error_ratio:rate1m"}, timeout=5
        ).json()
        if len(body["data"]["result"]) == 2:
            break
        time.sleep(1)
    time.sleep(3)
    out = tmp_path / "previews"
    drawn = render_previews(prometheus, out, range_seconds=30, step=1, rate_interval="10s")

    assert {p.name for p in out.glob("*.png")} == {f"{name}.png" for name in drawn}
    assert all(p.stat().st_size > 10_000 for p in out.glob("*.png"))
    inference = {panel.title: panel for panel in drawn["inference"]}
    assert all(panel.error is None for panels in drawn.values() for panel in panels)
    by_version = {label for label, _, _ in inference["Error ratio by version"].series}
    assert by_version == {"iris v1", "iris v2"}
    errors = {label: values for label, _, values in inference["Error ratio by version"].series}
    assert max(errors["iris v2"]) > 0.1 and max(errors["iris v1"]) == 0
    assert inference["Latency p50 / p95 / p99 by version"].series
    assert inference["Traffic share: active vs preview version"].series
