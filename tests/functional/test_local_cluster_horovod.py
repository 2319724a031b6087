"""The local cluster with the real horovodrun (Gloo, 2 ranks on this host): slow."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from control.domain.training import Hyperparameters, JobState, TrainingJobSpec
from control.local.cluster import LocalCluster
from control.manifests.config import ManifestConfig
from control.manifests.training import render_mpijob

pytestmark = pytest.mark.slow

TINY_TRAIN = """\
import argparse, sys, time
import horovod.torch as hvd
p = argparse.ArgumentParser()
for name in ("dataset-uri", "output-uri", "checkpoint-dir", "model-name", "run-id", "epochs",
             "batch-size", "learning-rate", "hidden-units", "seed", "metrics-port", "scratch-dir"):
    p.add_argument("--" + name)
a = p.parse_args()
hvd.init()
import pathlib
pathlib.Path(a.scratch_dir, f"rank-{hvd.rank()}").mkdir(parents=True, exist_ok=True)
print(f"rank={hvd.rank()} size={hvd.size()} checkpoints={a.checkpoint_dir} scratch={a.scratch_dir}", flush=True)
if a.model_name == "sleepy":
    time.sleep(120)
"""


def horovodrun_or_skip() -> str:
    import sys

    path = Path(sys.executable).parent / "horovodrun"
    if not path.exists() and not shutil.which("horovodrun"):
        pytest.skip("horovodrun is not installed (scripts/setup.sh builds it)")
    return str(path if path.exists() else shutil.which("horovodrun"))


def manifest(model: str) -> dict:
    spec = TrainingJobSpec(
        f"{model}-run", model, "/data/train.csv", "/out/", Hyperparameters(epochs=1), workers=2, gpus_per_worker=1
    )
    return render_mpijob(spec, ManifestConfig())


def processes_running(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> LocalCluster:
    repo = tmp_path / "repo"
    (repo / "workloads" / "training").mkdir(parents=True)
    (repo / "workloads" / "training" / "train.py").write_text(TINY_TRAIN)
    return LocalCluster(tmp_path / "state", repo_root=repo, horovodrun=horovodrun_or_skip(), grace_seconds=5)


def wait_for(cluster: LocalCluster, name: str, states: set[JobState], timeout: float = 120) -> JobState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = cluster.training_job_status(name).state
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError(f"{name}: {cluster.training_job_status(name)}")


def test_two_horovod_ranks_run_the_rendered_mpijob(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("tiny"))
    assert wait_for(cluster, "tiny-run", {JobState.SUCCEEDED, JobState.FAILED}) == JobState.SUCCEEDED
    stdout = cluster.log_paths("tiny-run")[0].read_text()
    checkpoints = cluster.checkpoints_dir / "tiny-run"
    scratch = cluster.job_dir("tiny-run") / "scratch"
    assert f"[0]<stdout>:rank=0 size=2 checkpoints={checkpoints} scratch={scratch}" in stdout
    assert not scratch.exists(), "the worker's scratch goes with the job"
    assert f"[1]<stdout>:rank=1 size=2 checkpoints={checkpoints}" in stdout


def test_the_default_launcher_runs_the_ranks_without_horovodruns_build_check(tmp_path: Path) -> None:
    horovodrun_or_skip()
    repo = tmp_path / "repo"
    (repo / "workloads" / "training").mkdir(parents=True)
    (repo / "workloads" / "training" / "train.py").write_text(TINY_TRAIN)
    cluster = LocalCluster(tmp_path / "state", repo_root=repo, grace_seconds=5)  # no horovodrun given
    assert cluster.horovodrun[1:] == ["-m", "control.local.horovod_launch"]
    cluster.submit_training_job(manifest("tiny"))
    assert wait_for(cluster, "tiny-run", {JobState.SUCCEEDED, JobState.FAILED}) == JobState.SUCCEEDED
    stdout = cluster.log_paths("tiny-run")[0].read_text()
    assert "[0]<stdout>:rank=0 size=2" in stdout and "[1]<stdout>:rank=1 size=2" in stdout
    usage = (cluster.job_dir("tiny-run") / "usage.json").read_text()  # the runner measured the ranks
    assert '"0"' in usage and '"1"' in usage


def test_delete_stops_every_rank(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("sleepy"))
    marker = str(cluster.repo_root / "workloads" / "training" / "train.py")
    stdout = cluster.log_paths("sleepy-run")[0]
    deadline = time.monotonic() + 120
    while not stdout.exists() or not all(f"[{r}]<stdout>:rank={r}" in stdout.read_text() for r in (0, 1)):
        assert time.monotonic() < deadline, "the ranks never started"
        time.sleep(0.2)
    cluster.delete_training_job("sleepy-run")
    deadline = time.monotonic() + 15
    while processes_running(marker):
        assert time.monotonic() < deadline, f"ranks left running: {processes_running(marker)}"
        time.sleep(0.1)
