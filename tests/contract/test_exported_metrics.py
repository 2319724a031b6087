"""Every `mlcp_*` metric the alert rules and dashboards read is really exported: scraped from the
model server's /metrics (after a prediction) and from the training job's metrics endpoint."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from control.local.processes import free_port
from tests.support.inference_artifact import FEATURES, write_artifact
from tests.support.inference_http import asgi_call
from tests.support.promql import recorded, used_metrics
from workloads.inference.app import create_app
from workloads.inference.settings import ServerSettings
from workloads.training.metrics import TrainingMetrics


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape_model_server(tmp_path) -> set[str]:
    artifact = write_artifact(tmp_path / "run")
    server = create_app(ServerSettings(model_uri=str(artifact.folder), model_name="m", model_version="1"))
    server.slot.start_loading()
    assert server.slot.wait_settled(30)
    try:
        body = json.dumps({"instances": [[0.1] * len(FEATURES)]}).encode()
        reply = asgi_call(server.data_app, "POST", "/invocations", body, {"content-type": "application/json"})
        assert reply.status == 200
        asgi_call(server.data_app, "POST", "/invocations", b"{", {"content-type": "application/json"})  # a 400 too
        return sample_names(asgi_call(server.data_app, "GET", "/metrics").body.decode())
    finally:
        server.start_draining()


def scrape_training_job() -> set[str]:
    port = free_port()
    metrics = TrainingMetrics(model="m", run_id="r")
    metrics.serve(port, "127.0.0.1")
    metrics.steps_taken(3)
    metrics.epoch_finished(
        {
            "epoch": 1,
            "train_loss": 0.5,
            "train_accuracy": 0.8,
            "val_loss": 0.6,
            "val_accuracy": 0.7,
            "samples_per_second": 100.0,
            "epoch_seconds": 1.0,
        }
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return sample_names(response.read().decode())


def test_every_mlcp_metric_used_by_rules_and_dashboards_is_exported(tmp_path):
    exported = scrape_model_server(tmp_path) | scrape_training_job()
    used = {name for name in used_metrics() if name.startswith("mlcp_")} - recorded()
    missing = sorted(used - exported)
    assert not missing, f"used by rules or dashboards but exported by nothing: {missing}"
    assert {"mlcp_inference_requests_total", "mlcp_training_loss"} <= used
