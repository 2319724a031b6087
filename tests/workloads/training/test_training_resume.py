"""The training loop in one process (Horovod with size 1): checkpoints, resume, determinism, metrics."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import generate_latest

from workloads.training.checkpoint import CheckpointError, checkpoint_path
from workloads.training.config import TrainingConfig
from workloads.training.data import load_dataset
from workloads.training.loop import train
from workloads.training.metrics import TrainingMetrics

TIMING = {"epoch_seconds", "samples_per_second"}


@pytest.fixture(scope="module")
def hvd():
    hvd = pytest.importorskip("horovod.torch")
    hvd.init()  # no launcher: one process, rank 0 of 1
    return hvd


@pytest.fixture
def dataset(blobs_csv):
    return load_dataset(str(blobs_csv(400, seed=11)))


def config(tmp_path, name: str, epochs: int, **changes) -> TrainingConfig:
    base = TrainingConfig(
        dataset_uri="unused",
        output_uri=str(tmp_path / "out"),
        checkpoint_dir=str(tmp_path / name),
        model_name="blobs",
        run_id=name,
        epochs=epochs,
        batch_size=32,
        hidden_units=16,
        seed=5,
    )
    return dataclasses.replace(base, **changes)


def without_timing(history):
    return [{key: value for key, value in record.items() if key not in TIMING} for record in history]


def test_resume_continues_at_the_next_epoch_and_matches_an_uninterrupted_run(tmp_path, hvd, dataset):
    events: list[tuple[str, dict]] = []

    def log(event, **fields):
        events.append((event, fields))

    first = train(config(tmp_path, "interrupted", 2), dataset, hvd, log=log)
    assert first.resumed_from_epoch == 0 and [r["epoch"] for r in first.history] == [1, 2]
    assert checkpoint_path(tmp_path / "interrupted").exists()

    events.clear()
    resumed = train(config(tmp_path, "interrupted", 4), dataset, hvd, log=log)
    assert resumed.resumed_from_epoch == 2
    assert ("resumed", {"from_epoch": 2, "next_epoch": 3, "epochs": 4}) in events
    assert [fields["epoch"] for event, fields in events if event == "epoch"] == [3, 4]

    straight = train(config(tmp_path, "straight", 4), dataset, hvd)
    # Same seed, same shards, restored optimizer and RNG: bit-for-bit the same model and metrics.
    assert resumed.digest == straight.digest
    assert without_timing(resumed.history) == without_timing(straight.history)
    assert straight.history[-1]["val_accuracy"] > 0.9  # it really learns the blobs


def test_a_finished_run_restarted_trains_no_more_and_gives_the_same_model(tmp_path, hvd, dataset):
    done = train(config(tmp_path, "done", 2), dataset, hvd)
    again = train(config(tmp_path, "done", 2), dataset, hvd)
    assert again.resumed_from_epoch == 2 and again.digest == done.digest and again.history == done.history


def test_a_checkpoint_made_with_other_settings_is_refused_in_one_line(tmp_path, hvd, dataset):
    train(config(tmp_path, "ckpt", 1), dataset, hvd)
    with pytest.raises(CheckpointError) as caught:
        train(config(tmp_path, "ckpt", 2, hidden_units=32), dataset, hvd)
    message = str(caught.value)
    assert "hidden_units: 16 -> 32" in message and "\n" not in message


def test_checkpoint_writes_leave_no_temp_files(tmp_path, hvd, dataset):
    train(config(tmp_path, "clean", 2), dataset, hvd)
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == ["checkpoint.pt"]


def test_rank0_metrics_follow_the_epochs(tmp_path, hvd, dataset):
    metrics = TrainingMetrics(model="blobs", run_id="m1")
    result = train(config(tmp_path, "metrics", 3), dataset, hvd, metrics=metrics)
    text = generate_latest(metrics.registry).decode()
    labels = 'model="blobs",run_id="m1"'
    steps = int(sum(record["steps"] for record in result.history))
    assert f"mlcp_training_epoch{{{labels}}} 3.0" in text
    assert f"mlcp_training_steps_total{{{labels}}} {steps}.0" in text
    assert f"mlcp_training_epoch_duration_seconds_count{{{labels}}} 3.0" in text
    assert f'mlcp_training_accuracy{{{labels},split="val"}} {result.history[-1]["val_accuracy"]}' in text
