"""The local cluster's runner mechanics, with tiny stand-ins for horovodrun and train.py.

The stand-in horovodrun drops its own options and runs the program (one process), so these
tests exercise what LocalCluster owns: detached runs, state on disk, exit codes, deadline,
kill, resume from checkpoints, idempotent submit, and status read by a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from control.domain.training import Hyperparameters, JobState, JobStatus, TrainingJobSpec
from control.errors import Conflict, NotFound
from control.local.cluster import LocalCluster
from control.manifests.config import ManifestConfig
from control.manifests.training import render_mpijob

ROOT = Path(__file__).resolve().parents[2]

FAKE_HOROVODRUN = """\
import os, sys
args = sys.argv[1:]
while args and args[0].startswith("-"):
    flag = args.pop(0)
    if flag in ("-np", "-H"):
        args.pop(0)
os.execv(args[0], args)
"""

# Behaviour chosen by the run's model name; one "epoch" per checkpoint file.
STAND_IN_TRAIN = """\
import argparse, os, pathlib, sys, time
p = argparse.ArgumentParser()
for name in ("dataset-uri", "output-uri", "checkpoint-dir", "model-name", "run-id", "epochs",
             "batch-size", "learning-rate", "hidden-units", "seed", "metrics-port", "scratch-dir"):
    p.add_argument("--" + name)
a = p.parse_args()
ckpt = pathlib.Path(a.checkpoint_dir); ckpt.mkdir(parents=True, exist_ok=True)
start = len(list(ckpt.glob("epoch-*")))
print(f"resuming at epoch {start}; env={os.environ.get('STAND_IN_MARK', '')}; port={a.metrics_port}", flush=True)
if a.model_name == "bad-data":
    print("warming up", file=sys.stderr, flush=True)
    print("bad dataset: missing column label", file=sys.stderr, flush=True)
    sys.exit(3)
for epoch in range(start, int(a.epochs)):
    (ckpt / f"epoch-{epoch}").write_text("x")
    print(f"epoch {epoch}", flush=True)
    time.sleep(0.3 if a.model_name == "slow" else 0.0)
"""


@pytest.fixture
def cluster(tmp_path: Path) -> LocalCluster:
    repo = tmp_path / "repo"
    (repo / "workloads" / "training").mkdir(parents=True)
    (repo / "workloads" / "training" / "train.py").write_text(STAND_IN_TRAIN)
    horovodrun = tmp_path / "horovodrun"
    horovodrun.write_text(f"#!{sys.executable}\n{FAKE_HOROVODRUN}")
    horovodrun.chmod(0o755)
    return LocalCluster(
        tmp_path / "state",
        repo_root=repo,
        env={"STAND_IN_MARK": "from-local-runtime"},
        horovodrun=str(horovodrun),
        grace_seconds=2.0,
    )


def manifest(model: str = "churn", epochs: int = 3, deadline: int = 600, run_id: str | None = None) -> dict:
    spec = TrainingJobSpec(
        run_id=run_id or f"{model}-run",
        model_name=model,
        dataset_uri="/data/train.csv",
        output_uri="/out/",
        hyperparameters=Hyperparameters(epochs=epochs),
        deadline_seconds=deadline,
    )
    return render_mpijob(spec, ManifestConfig())


def wait_until_finished(cluster: LocalCluster, name: str, timeout: float = 20.0) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cluster.training_job_status(name)
        if status.state.finished:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {cluster.training_job_status(name)}")


def test_a_job_runs_detached_and_succeeds(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest())
    assert cluster.training_job_status("churn-run").state in (JobState.PENDING, JobState.RUNNING)
    status = wait_until_finished(cluster, "churn-run")
    assert (status.state, status.reason) == (JobState.SUCCEEDED, "Completed")
    stdout, _ = cluster.log_paths("churn-run")
    log = stdout.read_text()
    assert "epoch 2" in log and "env=from-local-runtime" in log
    assert f"port={cluster.metrics_port('churn-run')}" in log
    assert sorted(p.name for p in (cluster.checkpoints_dir / "churn-run").iterdir()) == [
        "epoch-0", "epoch-1", "epoch-2"
    ]  # fmt: skip
    # The environment handed to the cluster (credentials, endpoints) is never written to disk.
    assert not any("from-local-runtime" in p.read_text() for p in cluster.job_dir("churn-run").glob("*.json"))


def test_a_failing_job_reports_its_last_stderr_line(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("bad-data"))
    status = wait_until_finished(cluster, "bad-data-run")
    assert (status.state, status.reason, status.message) == (
        JobState.FAILED, "Error", "bad dataset: missing column label"
    )  # fmt: skip


def test_submit_is_idempotent_and_refuses_a_different_spec(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("slow", epochs=20))
    cluster.submit_training_job(manifest("slow", epochs=20))
    with pytest.raises(Conflict):
        cluster.submit_training_job(manifest("slow", epochs=21))
    runners = [line for line in cluster.job_dir("slow-run").joinpath("runner.log").read_text().splitlines() if line]
    assert runners == []
    cluster.delete_training_job("slow-run")


def test_a_fresh_process_reads_the_same_status(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("bad-data"))
    wait_until_finished(cluster, "bad-data-run")
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from control.local.cluster import LocalCluster
        c = LocalCluster(Path({str(cluster.state_dir)!r}), repo_root=Path("."))
        print(c.training_job_status("bad-data-run").to_dict())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "'state': 'FAILED'" in out and "bad dataset: missing column label" in out


def test_delete_kills_the_run_and_a_resubmitted_run_resumes_from_its_checkpoints(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("slow", epochs=40))
    deadline = time.monotonic() + 20
    while len(list((cluster.checkpoints_dir / "slow-run").glob("epoch-*"))) < 2:
        assert time.monotonic() < deadline, "the run never checkpointed"
        time.sleep(0.05)
    assert cluster.training_job_status("slow-run").state == JobState.RUNNING
    pid = int(cluster.job_dir("slow-run").joinpath("runner.pid").read_text().split()[0])
    cluster.delete_training_job("slow-run")
    cluster.delete_training_job("slow-run")  # idempotent
    with pytest.raises(NotFound):
        cluster.training_job_status("slow-run")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    done = len(list((cluster.checkpoints_dir / "slow-run").glob("epoch-*")))
    time.sleep(0.5)
    assert len(list((cluster.checkpoints_dir / "slow-run").glob("epoch-*"))) == done, "the job kept running"

    cluster.submit_training_job(manifest("slow", epochs=done + 1))
    assert wait_until_finished(cluster, "slow-run").state == JobState.SUCCEEDED
    assert f"resuming at epoch {done}" in cluster.log_paths("slow-run")[0].read_text()


def test_the_deadline_stops_a_run(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("slow", epochs=100, deadline=1))
    status = wait_until_finished(cluster, "slow-run")
    assert (status.state, status.reason) == (JobState.FAILED, "DeadlineExceeded")


def test_a_runner_that_died_is_reported_as_lost(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("slow", epochs=100))
    pid_file = cluster.job_dir("slow-run") / "runner.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pid = int(pid_file.read_text().split()[0])
    os.killpg(pid, 9)
    deadline = time.monotonic() + 10
    while cluster.training_job_status("slow-run").state == JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert cluster.training_job_status("slow-run").reason == "RunnerLost"
    cluster.delete_training_job("slow-run")


def test_running_jobs_are_prometheus_targets(cluster: LocalCluster) -> None:
    cluster.submit_training_job(manifest("slow", epochs=100))
    port = cluster.metrics_port("slow-run")
    [target] = json.loads(cluster.targets_file.read_text())
    assert target["targets"] == [f"127.0.0.1:{port}"]
    # the meta labels of rank 0's pod, from which the training PodMonitor's relabelings work
    assert {
        key: target["labels"][key]
        for key in (
            "__meta_kubernetes_namespace",
            "__meta_kubernetes_pod_name",
            "__meta_kubernetes_pod_label_training_kubeflow_org_job_name",
            "__meta_kubernetes_pod_label_training_kubeflow_org_replica_index",
        )
    } == {
        "__meta_kubernetes_namespace": "ml-training",
        "__meta_kubernetes_pod_name": "slow-run-worker-0",
        "__meta_kubernetes_pod_label_training_kubeflow_org_job_name": "slow-run",
        "__meta_kubernetes_pod_label_training_kubeflow_org_replica_index": "0",
    }
    cluster.submit_training_job(manifest("churn", epochs=1))
    wait_until_finished(cluster, "churn-run")
    job_name = "__meta_kubernetes_pod_label_training_kubeflow_org_job_name"
    names = [group["labels"][job_name] for group in json.loads(cluster.targets_file.read_text())]
    assert names == ["slow-run"]  # a finished job is no longer a target
    cluster.delete_training_job("slow-run")
    assert json.loads(cluster.targets_file.read_text()) == []
