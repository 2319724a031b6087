import math
from dataclasses import replace

import pytest

from control.domain.training import EvaluationGate, Hyperparameters, TrainingJobSpec, parse_workers
from control.errors import InvalidInput


def test_hyperparameters_default_and_parse():
    assert Hyperparameters.parse(None) == Hyperparameters()
    hp = Hyperparameters.parse({"epochs": 3, "learning_rate": 0.1})
    assert (hp.epochs, hp.learning_rate, hp.batch_size) == (3, 0.1, 64)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"epochs": 0}, "hyperparameters.epochs"),
        ({"epochs": 2.5}, "hyperparameters.epochs"),
        ({"epochs": "3"}, "hyperparameters.epochs"),
        ({"epochs": True}, "hyperparameters.epochs"),
        ({"learning_rate": 100}, "hyperparameters.learning_rate"),
        ({"dropout": 0.1}, "hyperparameters.dropout"),
        ([1, 2], "hyperparameters"),
    ],
)
def test_bad_hyperparameters_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as caught:
        Hyperparameters.parse(raw)
    assert caught.value.field == field


def test_gate_direction_follows_the_metric():
    assert EvaluationGate("val_accuracy", 0.8).passes({"val_accuracy": 0.8})
    assert not EvaluationGate("val_accuracy", 0.8).passes({"val_accuracy": 0.79})
    assert EvaluationGate("val_loss", 0.5).passes({"val_loss": 0.4})
    assert not EvaluationGate("val_loss", 0.5).passes({"val_loss": 0.6})


def test_gate_never_passes_on_missing_or_nan_metrics():
    assert not EvaluationGate("val_accuracy", 0.0).passes({})
    assert not EvaluationGate("val_loss", 10.0).passes({"val_loss": math.nan})


@pytest.mark.parametrize("raw", [{"metric": "f1"}, {"threshold": "high"}, "0.9"])
def test_bad_gates_are_rejected(raw):
    with pytest.raises(InvalidInput):
        EvaluationGate.parse(raw)


def test_workers_bounds():
    assert parse_workers(None) == 2
    for bad in (0, 65, "2", True):
        with pytest.raises(InvalidInput):
            parse_workers(bad)


def test_training_args_carry_every_hyperparameter():
    spec = TrainingJobSpec(
        run_id="r",
        model_name="m",
        dataset_uri="s3://d/k",
        output_uri="s3://a/p/",
        hyperparameters=Hyperparameters(epochs=7, batch_size=16, learning_rate=0.2, hidden_units=8, seed=1),
    )
    args = spec.training_args("/ckpt")
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--epochs"] == "7" and pairs["--batch-size"] == "16" and pairs["--checkpoint-dir"] == "/ckpt"
    assert pairs["--learning-rate"] == "0.2" and pairs["--hidden-units"] == "8" and pairs["--seed"] == "1"
    assert "--dataset-version-id" not in pairs  # no version known (an unversioned bucket): the latest
    pinned = dict(zip(*[iter(replace(spec, dataset_version_id="v-123").training_args("/ckpt"))] * 2, strict=True))
    assert pinned["--dataset-version-id"] == "v-123"


def test_requested_worker_resources_reach_the_job_spec_and_its_scratch_volume():
    from control.composition import build_platform
    from control.domain.pipeline_steps import PipelineRun
    from control.domain.training import TrainingRequest, WorkerResources
    from control.manifests.config import ManifestConfig
    from control.manifests.training import render_mpijob
    from control.settings import Settings
    from control.usecases.training import job_spec

    resources = WorkerResources.parse({"scratch_gib": 200, "memory_mib": 4096})
    dataset = {"uri": "s3://d/datasets/iris/v1/data.csv", "bucket": "d", "key": "datasets/iris/v1/data.csv"}
    request = TrainingRequest("iris", "v1", dataset, resources=resources)
    run = PipelineRun.parse(request.to_execution_input("iris-v1-abc"))
    platform = build_platform(Settings(region="us-east-1", data_bucket="d", artifacts_bucket="a", registry_table="t"))
    spec = job_spec(platform, run)
    assert spec.resources == WorkerResources(cpu_millicores=2000, memory_mib=4096, scratch_gib=200)
    pod = render_mpijob(spec, ManifestConfig())["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]
    scratch = next(v for v in pod["volumes"] if v["name"] == "scratch")
    assert scratch["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert request.content_key()["resources"] == resources.to_dict()  # pinned resources make another run


@pytest.mark.parametrize(
    "raw, field",
    [
        ("big", "resources"),
        ({"gpus": 2}, "resources.gpus"),
        ({"scratch_gib": 0}, "resources.scratch_gib"),
        ({"memory_mib": 1.5}, "resources.memory_mib"),
        ({"cpu_millicores": True}, "resources.cpu_millicores"),
    ],
)
def test_bad_resources_name_the_field(raw, field):
    from control.domain.training import WorkerResources

    with pytest.raises(InvalidInput) as caught:
        WorkerResources.parse(raw)
    assert caught.value.field == field
