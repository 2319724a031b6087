"""The local training cluster: runs a rendered MPIJob as `horovodrun --gloo` on this host.

All state lives on disk, one folder per job, so any process (a fresh one included) reads the
same status:

    <state_dir>/training-jobs/<name>/
        manifest.json   the MPIJob as submitted (submit compares against it)
        job.json        the derived command, env from the manifest, deadline, metrics port
        runner.pid      "<pid> <start time>" of the job runner (its own process group)
        stdout.log, stderr.log
        result.json     {"exit_code", "reason"} written by the runner when the job ends

The runner (`python -m control.local.jobrunner <jobdir>`) daemonizes, starts horovodrun in its
process group, enforces the deadline and records the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from control.domain.training import JobState, JobStatus
from control.errors import Conflict, InvalidInput, NotFound
from control.local.processes import free_port, kill_tree, process_alive, read_json, write_json_atomic
from dashboards.scrape import pod_target

JOBS_FOLDER = "training-jobs"
TARGETS_FILE = "training-targets.json"
CONTAINER_ENTRYPOINT_DIR = "/opt/training"
CONTAINER_CHECKPOINT_DIR = "/mnt/checkpoints"
CONTAINER_SCRATCH_DIR = "/mnt/scratch"
SCRATCH_FOLDER = "scratch"  # in the job's folder: the worker's scratch volume, removed when the job ends
LAUNCHERS = ("mpirun", "mpiexec", "horovodrun")
_NP_FLAGS = ("-np", "--np", "-n", "-c", "--num-proc")
_PYTHON = re.compile(r"python[0-9.]*")
_RANK_STDERR = re.compile(r"^\[(\d+)\]<stderr>:(.*)$")


# -- pure parts -------------------------------------------------------------------------------


def launcher_container(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        container: Mapping[str, Any] = manifest["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"][
            "containers"
        ][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise InvalidInput("the MPIJob has no launcher container", field="spec.mpiReplicaSpecs.Launcher") from exc
    return container


def _map_path(arg: str, repo_root: Path, checkpoints_dir: Path, scratch_dir: Path | None) -> str:
    mappings = [
        (CONTAINER_ENTRYPOINT_DIR, repo_root / "workloads" / "training"),
        (CONTAINER_CHECKPOINT_DIR, checkpoints_dir),
    ]
    if scratch_dir is not None:
        mappings.append((CONTAINER_SCRATCH_DIR, scratch_dir))
    for prefix, local in mappings:
        if arg == prefix or arg.startswith(prefix + "/"):
            return str(local) + arg[len(prefix) :]
    return arg


def local_command(
    manifest: Mapping[str, Any],
    *,
    repo_root: Path,
    checkpoints_dir: Path,
    python: str,
    horovodrun: str | Sequence[str],
    metrics_port: int,
    scratch_dir: Path | None = None,
) -> list[str]:
    """`horovodrun -np N -H localhost:N --gloo python <entrypoint> <args>` from the launcher's
    command: N is the launcher's `-np`, container paths map to this repository and folder."""
    container = launcher_container(manifest)
    argv = [str(part) for part in [*(container.get("command") or []), *(container.get("args") or [])]]
    if not argv or os.path.basename(argv[0]) not in LAUNCHERS:
        raise InvalidInput(f"the launcher must run one of {', '.join(LAUNCHERS)}; got {argv[:1]}")
    program_at = next((i for i, part in enumerate(argv) if i and _PYTHON.fullmatch(os.path.basename(part))), None)
    if program_at is None:
        raise InvalidInput("the launcher command runs no python program")
    options = argv[1:program_at]
    slots = next((options[i + 1] for i, part in enumerate(options[:-1]) if part in _NP_FLAGS), None)
    if slots is None:
        spec = manifest.get("spec", {})
        workers = spec.get("mpiReplicaSpecs", {}).get("Worker", {}).get("replicas", 1)
        slots = str(workers * spec.get("slotsPerWorker", 1))
    program = [_map_path(arg, repo_root, checkpoints_dir, scratch_dir) for arg in argv[program_at + 1 :]]
    if "--metrics-port" in program[:-1]:
        program[program.index("--metrics-port") + 1] = str(metrics_port)
    launcher = [horovodrun] if isinstance(horovodrun, str) else list(horovodrun)
    return [*launcher, "-np", slots, "-H", f"localhost:{slots}", "--gloo", python, *program]


def manifest_env(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The launcher's literal env (valueFrom needs a cluster and is skipped)."""
    env = launcher_container(manifest).get("env") or []
    return {item["name"]: str(item["value"]) for item in env if "value" in item}


def last_error_line(stderr_text: str) -> str:
    """The training script's one-line reason: the first `error: ...` line a rank wrote, else the
    last line of the lowest rank (ranks killed by horovodrun after another failed only say
    "Terminated"), else horovodrun's own last line."""
    by_rank: dict[int, str] = {}
    fallback = ""
    for line in stderr_text.splitlines():
        match = _RANK_STDERR.match(line)
        if match is None:
            if line.strip():
                fallback = line.strip()
            continue
        text = match.group(2).strip()
        if text.lower().startswith("error:"):
            return text
        if text and text not in _KILLED:
            by_rank[int(match.group(1))] = text
    return by_rank[min(by_rank)] if by_rank else fallback


_KILLED = frozenset({"Terminated", "Killed"})


def _canonical(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def _tail(path: Path, size: int = 65536) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - size, 0))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_status(job_dir: Path, *, start_timeout_seconds: float = 60.0) -> JobStatus:
    """A job's status from its folder alone (shared by LocalCluster and the runner)."""
    name = job_dir.name
    if not (job_dir / "manifest.json").exists():
        raise NotFound(f"training job {name} not found")
    result_path = job_dir / "result.json"
    stderr_line = last_error_line(_tail(job_dir / "stderr.log"))
    if result_path.exists():
        result = read_json(result_path)
        if result["exit_code"] == 0:
            return JobStatus(name, JobState.SUCCEEDED, result.get("reason", "Completed"), "")
        return JobStatus(
            name,
            JobState.FAILED,
            result.get("reason", "Error"),
            stderr_line or f"exit code {result['exit_code']}",
        )
    pid_path = job_dir / "runner.pid"
    if not pid_path.exists():
        job = read_json(job_dir / "job.json")
        if time.time() - job["submitted_at"] > start_timeout_seconds:
            return JobStatus(name, JobState.FAILED, "RunnerNotStarted", "the job runner never started")
        return JobStatus(name, JobState.PENDING, "Submitted", "")
    pid_text, _, start = pid_path.read_text().partition(" ")
    if process_alive(int(pid_text), start.strip() or None):
        return JobStatus(name, JobState.RUNNING, "Running", "")
    if result_path.exists():  # the runner finished between the two reads
        return read_status(job_dir, start_timeout_seconds=start_timeout_seconds)
    return JobStatus(name, JobState.FAILED, "RunnerLost", stderr_line or "the job runner died without a result")


def write_metrics_targets(state_dir: Path, targets_file: Path) -> None:
    """Prometheus file_sd: one target per pending or running job that serves metrics."""
    jobs_dir = state_dir / JOBS_FOLDER
    targets_file.parent.mkdir(parents=True, exist_ok=True)
    with _locked(targets_file.with_name(targets_file.name + ".lock")):
        groups = []
        for job_dir in sorted(jobs_dir.glob("[!.]*")) if jobs_dir.is_dir() else []:
            try:
                status = read_status(job_dir)
                job = read_json(job_dir / "job.json")
            except (NotFound, OSError, ValueError, KeyError):
                continue
            if status.state.finished or not job.get("metrics_port"):
                continue
            groups.append(_rank0_target(job_dir, job))
        write_json_atomic(targets_file, groups)


def _rank0_target(job_dir: Path, job: dict[str, Any]) -> dict[str, Any]:
    """The file_sd target of rank 0 (the first worker, where mpirun puts it), with the pod labels
    mpi-operator gives that worker, so the training PodMonitor's relabelings apply as on EKS."""
    manifest = read_json(job_dir / "manifest.json")
    template = manifest["spec"]["mpiReplicaSpecs"]["Worker"]["template"]
    container = template["spec"]["containers"][0]
    ports = container.get("ports") or [{"containerPort": 0}]
    labels = {
        **template.get("metadata", {}).get("labels", {}),
        "training.kubeflow.org/job-name": job_dir.name,
        "training.kubeflow.org/job-role": "worker",
        "training.kubeflow.org/operator-name": "mpi-operator",
        "training.kubeflow.org/replica-index": "0",
        "training.kubeflow.org/replica-type": "worker",
    }
    return pod_target(
        f"127.0.0.1:{job['metrics_port']}",
        namespace=job.get("namespace", ""),
        pod=f"{job_dir.name}-worker-0",
        container=container["name"],
        port=ports[0]["containerPort"],
        labels=labels,
    )


# -- the adapter ------------------------------------------------------------------------------


class LocalCluster:
    """TrainingCluster on this host. `env` is added to every job's environment (for example
    AWS_ENDPOINT_URL and credentials of the embedded AWS); it is handed to the runner process,
    never written to disk."""

    def __init__(
        self,
        state_dir: Path,
        *,
        repo_root: Path,
        checkpoints_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        horovodrun: str | None = None,
        targets_file: Path | None = None,
        start_timeout_seconds: float = 60.0,
        grace_seconds: float = 10.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.jobs_dir = self.state_dir / JOBS_FOLDER
        self.repo_root = Path(repo_root)
        self.checkpoints_dir = Path(checkpoints_dir) if checkpoints_dir else self.state_dir / "checkpoints"
        self.env = dict(env or {})
        self.python = python
        # horovodrun itself when given; else horovodrun's code without its build pre-check (a
        # whole torch import before the ranks start: control/local/horovod_launch.py).
        self.horovodrun: str | list[str] = horovodrun or [python, "-m", "control.local.horovod_launch"]
        self.targets_file = targets_file or self.state_dir / TARGETS_FILE
        self.start_timeout_seconds = start_timeout_seconds
        self.grace_seconds = grace_seconds

    def job_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise InvalidInput(f"bad training job name {name!r}", field="name")
        return self.jobs_dir / name

    def submit_training_job(self, manifest: dict[str, Any]) -> None:
        name = manifest.get("metadata", {}).get("name", "")
        job_dir = self.job_dir(name)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        metrics_port = free_port()
        command = local_command(
            manifest,
            repo_root=self.repo_root,
            checkpoints_dir=self.checkpoints_dir,
            python=self.python,
            horovodrun=self.horovodrun,
            metrics_port=metrics_port,
            scratch_dir=job_dir / SCRATCH_FOLDER,
        )
        deadline = manifest.get("spec", {}).get("runPolicy", {}).get("activeDeadlineSeconds")
        staging = self.jobs_dir / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        write_json_atomic(staging / "manifest.json", manifest)
        write_json_atomic(
            staging / "job.json",
            {
                "name": name,
                "namespace": manifest.get("metadata", {}).get("namespace", ""),
                "command": command,
                "env": manifest_env(manifest),
                "env_overrides": sorted(self.env),
                "cwd": str(self.repo_root),
                "deadline_seconds": deadline,
                "metrics_port": metrics_port,
                "submitted_at": time.time(),
                "state_dir": str(self.state_dir),
                "targets_file": str(self.targets_file),
            },
        )
        try:
            os.rename(staging, job_dir)  # atomic: exactly one submitter creates the job
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (job_dir / "manifest.json").exists():
                raise
            if _canonical(read_json(job_dir / "manifest.json")) != _canonical(manifest):
                raise Conflict(f"training job {name} already exists with a different spec") from None
            return
        self._start_runner(job_dir)
        write_metrics_targets(self.state_dir, self.targets_file)

    def _start_runner(self, job_dir: Path) -> None:
        env = {**os.environ, **self.env}
        package_root = str(Path(__file__).resolve().parents[2])  # where `control` is importable from
        env["PYTHONPATH"] = os.pathsep.join(
            dict.fromkeys(filter(None, [package_root, str(self.repo_root), env.get("PYTHONPATH")]))
        )
        # The runner forks and exits at once (its child carries on in its own session), so
        # waiting here leaves no zombie behind in a long-lived caller.
        with (job_dir / "runner.log").open("ab") as runner_log:
            subprocess.run(
                [self.python, "-m", "control.local.jobrunner", str(job_dir)],
                env=env,
                cwd=self.repo_root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=runner_log,
                check=True,
                start_new_session=True,
                timeout=30,
            )

    def training_job_status(self, name: str) -> JobStatus:
        return read_status(self.job_dir(name), start_timeout_seconds=self.start_timeout_seconds)

    def delete_training_job(self, name: str) -> None:
        job_dir = self.job_dir(name)
        if not job_dir.exists():
            return
        pid_path = job_dir / "runner.pid"
        if pid_path.exists():
            pid_text, _, start = pid_path.read_text().partition(" ")
            pid = int(pid_text)
            if process_alive(pid, start.strip() or None):
                kill_tree(pid, group=True, grace_seconds=self.grace_seconds)
        shutil.rmtree(job_dir, ignore_errors=True)
        write_metrics_targets(self.state_dir, self.targets_file)

    def stop_all(self) -> None:
        """Stop every job still running (the platform is shutting down); keep their records."""
        for job_dir in sorted(self.jobs_dir.glob("[!.]*")) if self.jobs_dir.is_dir() else []:
            pid_path = job_dir / "runner.pid"
            if pid_path.exists() and not (job_dir / "result.json").exists():
                pid_text, _, start = pid_path.read_text().partition(" ")
                if process_alive(int(pid_text), start.strip() or None):
                    kill_tree(int(pid_text), group=True, grace_seconds=self.grace_seconds)

    def metrics_port(self, name: str) -> int:
        port: int = read_json(self.job_dir(name) / "job.json")["metrics_port"]
        return port

    def log_paths(self, name: str) -> tuple[Path, Path]:
        job_dir = self.job_dir(name)
        return job_dir / "stdout.log", job_dir / "stderr.log"
