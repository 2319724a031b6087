from __future__ import annotations

import urllib.request

from prometheus_client import generate_latest

from control.local.processes import free_port
from workloads.training.metrics import TrainingMetrics

RECORD = {
    "epoch": 3,
    "train_loss": 0.4,
    "train_accuracy": 0.8,
    "val_loss": 0.5,
    "val_accuracy": 0.75,
    "samples_per_second": 1234.0,
    "epoch_seconds": 0.7,
}


def test_contract_names_with_model_and_run_labels():
    metrics = TrainingMetrics(model="blobs", run_id="r1")
    metrics.steps_taken(5)
    metrics.epoch_finished(RECORD)
    text = generate_latest(metrics.registry).decode()
    labels = 'model="blobs",run_id="r1"'
    for line in [
        f"mlcp_training_epoch{{{labels}}} 3.0",
        f'mlcp_training_loss{{{labels},split="train"}} 0.4',
        f'mlcp_training_loss{{{labels},split="val"}} 0.5',
        f'mlcp_training_accuracy{{{labels},split="val"}} 0.75',
        f"mlcp_training_samples_per_second{{{labels}}} 1234.0",
        f"mlcp_training_steps_total{{{labels}}} 5.0",
        f"mlcp_training_epoch_duration_seconds_count{{{labels}}} 1.0",
    ]:
        assert line in text


def test_two_instances_do_not_clash_and_serve_over_http():
    TrainingMetrics(model="a", run_id="1")
    metrics = TrainingMetrics(model="b", run_id="2")  # no global registry: no duplicate-timeseries error
    port = free_port()
    metrics.serve(port, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'mlcp_training_epoch{model="b",run_id="2"} 0.0' in body
