"""How the local cluster turns the rendered MPIJob's launcher into a horovodrun command."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.domain.training import TrainingJobSpec
from control.errors import InvalidInput
from control.local.cluster import last_error_line, local_command, manifest_env
from control.manifests.config import ManifestConfig
from control.manifests.training import render_mpijob

SPEC = TrainingJobSpec(
    run_id="churn-v1-abc",
    model_name="churn",
    dataset_uri="s3://data/datasets/churn/v1/data.csv",
    output_uri="s3://artifacts/models/churn/runs/churn-v1-abc/",
    workers=2,
    gpus_per_worker=1,
)


def test_the_launcher_becomes_horovodrun_with_gloo_on_localhost(tmp_path: Path) -> None:
    manifest = render_mpijob(SPEC, ManifestConfig(region="eu-west-1"))
    command = local_command(
        manifest,
        repo_root=Path("/repo"),
        checkpoints_dir=tmp_path,
        python="/venv/bin/python",
        horovodrun="/venv/bin/horovodrun",
        metrics_port=45678,
        scratch_dir=tmp_path / "job" / "scratch",
    )
    expected_args = SPEC.training_args(
        f"{tmp_path}/churn-v1-abc", metrics_port=45678, scratch_dir=f"{tmp_path}/job/scratch"
    )
    assert command == [
        "/venv/bin/horovodrun", "-np", "2", "-H", "localhost:2", "--gloo",
        "/venv/bin/python", "/repo/workloads/training/train.py", *expected_args,
    ]  # fmt: skip
    assert manifest_env(manifest)["AWS_REGION"] == "eu-west-1"


def test_a_horovodrun_launcher_is_understood_too(tmp_path: Path) -> None:
    manifest = render_mpijob(SPEC, ManifestConfig())
    launcher = manifest["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    launcher["command"] = ["horovodrun", "-np", "3", "--hostfile", "/etc/mpi/hostfile", "python3", "/opt/training/x.py"]
    command = local_command(
        manifest, repo_root=Path("/r"), checkpoints_dir=tmp_path, python="py", horovodrun="hvd", metrics_port=1
    )
    assert command == ["hvd", "-np", "3", "-H", "localhost:3", "--gloo", "py", "/r/workloads/training/x.py"]


def test_a_launcher_that_is_not_mpi_is_refused(tmp_path: Path) -> None:
    manifest = render_mpijob(SPEC, ManifestConfig())
    manifest["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = ["bash"]
    with pytest.raises(InvalidInput):
        local_command(
            manifest, repo_root=Path("/r"), checkpoints_dir=tmp_path, python="p", horovodrun="h", metrics_port=1
        )


def test_the_failure_message_is_the_first_ranks_last_stderr_line() -> None:
    stderr = "\n".join(
        [
            "[1]<stderr>:Traceback (most recent call last):",
            "[1]<stderr>:RuntimeError: Gloo connection closed",
            "[0]<stderr>:bad dataset: missing column label",
            "Traceback (most recent call last):",
            "RuntimeError: Horovod detected that one or more processes exited with non-zero status",
        ]
    )
    assert last_error_line(stderr) == "bad dataset: missing column label"
    assert last_error_line("only horovodrun spoke\n") == "only horovodrun spoke"


def test_the_launcher_may_be_a_command_of_several_words(tmp_path: Path) -> None:
    command = local_command(
        render_mpijob(SPEC, ManifestConfig()), repo_root=Path("/r"), checkpoints_dir=tmp_path, python="py",
        horovodrun=["py", "-m", "control.local.horovod_launch"], metrics_port=1,
    )  # fmt: skip
    assert command[:8] == ["py", "-m", "control.local.horovod_launch", "-np", "2", "-H", "localhost:2", "--gloo"]
