"""Runs one local training job: `python -m control.local.jobrunner <jobdir>` (see cluster.py).

It forks and returns at once; the child leads its own session, records its pid, runs the
job's command with logs to files, enforces the deadline and writes result.json last.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from control.local.cluster import SCRATCH_FOLDER, write_metrics_targets
from control.local.processes import kill_tree, process_start_time, read_json, write_json_atomic
from control.local.usage import SAMPLE_SECONDS, UsageSampler

DEADLINE_GRACE_SECONDS = 10.0


def _refresh_targets(job: dict[str, Any]) -> None:
    try:
        write_metrics_targets(Path(job["state_dir"]), Path(job["targets_file"]))
    except OSError as exc:  # metrics discovery must never fail the job
        print(f"could not update metrics targets: {exc}", file=sys.stderr)


def run(job_dir: Path) -> int:
    job = read_json(job_dir / "job.json")
    pid = os.getpid()
    # Written whole or not at all: the cluster reads it while the runner starts.
    partial = job_dir / ".runner.pid.tmp"
    partial.write_text(f"{pid} {process_start_time(pid) or ''}")
    os.replace(partial, job_dir / "runner.pid")
    env = {**os.environ, **job["env"]}
    env.update({name: os.environ[name] for name in job["env_overrides"] if name in os.environ})
    env["PYTHONUNBUFFERED"] = "1"
    with (job_dir / "stdout.log").open("ab") as stdout, (job_dir / "stderr.log").open("ab") as stderr:
        process = subprocess.Popen(
            job["command"], stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env, cwd=job["cwd"]
        )
    _refresh_targets(job)
    deadline = job.get("deadline_seconds")
    reason = ""
    exit_code = _wait_sampling_usage(process, job_dir, deadline)
    if exit_code is None:
        kill_tree(process.pid, group=False, grace_seconds=DEADLINE_GRACE_SECONDS)
        exit_code = process.wait()
        reason = "DeadlineExceeded"
    if not reason:
        if exit_code == 0:
            reason = "Completed"
        elif exit_code < 0:
            reason = f"Killed:{signal.Signals(-exit_code).name}"
        else:
            reason = "Error"
    shutil.rmtree(job_dir / SCRATCH_FOLDER, ignore_errors=True)  # the scratch volume goes with the pod
    write_json_atomic(job_dir / "result.json", {"exit_code": exit_code, "reason": reason, "finished_at": time.time()})
    _refresh_targets(job)
    return exit_code


def _wait_sampling_usage(process: subprocess.Popen[bytes], job_dir: Path, deadline: float | None) -> int | None:
    """The job's exit code, sampling its ranks' CPU and memory meanwhile (usage.json, for
    right-sizing); None when it is still running at its deadline."""
    sampler = UsageSampler(process.pid)
    ends_at = None if deadline is None else time.monotonic() + float(deadline)
    while True:
        try:
            return process.wait(timeout=SAMPLE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        try:
            sampler.sample()
            sampler.save(job_dir)
        except OSError as exc:  # measuring must never fail the job
            print(f"could not sample usage: {exc}", file=sys.stderr)
        if ends_at is not None and time.monotonic() >= ends_at:
            return None


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m control.local.jobrunner <jobdir>")
    job_dir = Path(argv[1]).resolve()
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    code = 0
    try:
        run(job_dir)
    except BaseException:  # the daemon has no caller: leave the trace in runner.log
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
