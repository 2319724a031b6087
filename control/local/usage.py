"""Training workers' CPU and memory use on this host, sampled from the rank processes.

On EKS a worker is a pod and cAdvisor measures it; here a worker is a rank: every process below
the job's `horovodrun` whose environment carries HOROVOD_RANK (the rank's shell and its Python).
The job runner samples them every second, as the kubelet's cAdvisor does (CPU: the rate of
user + system time; memory: resident set size, the working set's stand-in), and keeps
`usage.json` in the job's folder: per rank its CPU samples and its memory peak.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from control.domain.rightsizing import TARGET_CPU_PERCENTILE, WorkerUsage, percentile
from control.local.processes import descendants, read_json, write_json_atomic

USAGE_FILE = "usage.json"
SAMPLE_SECONDS = 1.0
MAX_CPU_SAMPLES = 7200  # two hours at one a second; then every other one is kept
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(b"HOROVOD_RANK="):
            value = entry.split(b"=", 1)[1]
            return int(value) if value.isdigit() else None
    return None


def _cpu_ticks_and_rss(pid: int) -> tuple[int, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12]), int(statm[1]) * _PAGE  # utime + stime; resident pages


@dataclass
class RankSamples:
    cpu_cores: list[float] = field(default_factory=list)
    memory_peak_bytes: int = 0

    def add_cpu(self, cores: float) -> None:
        self.cpu_cores.append(cores)
        if len(self.cpu_cores) > MAX_CPU_SAMPLES:
            del self.cpu_cores[::2]


class UsageSampler:
    """Samples the rank processes below `root_pid`; `sample()` once a second, `to_dict()` to save."""

    def __init__(self, root_pid: int) -> None:
        self._root = root_pid
        self._ticks: dict[int, int] = {}  # pid -> CPU ticks at the last sample
        self._at: float | None = None
        self.ranks: dict[int, RankSamples] = {}

    def sample(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        cpu: dict[int, float] = {}
        memory: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for pid in descendants(self._root):
            rank = _rank_of(pid)
            measured = _cpu_ticks_and_rss(pid) if rank is not None else None
            if rank is None or measured is None:
                continue
            ticks[pid], rss = measured
            memory[rank] = memory.get(rank, 0) + rss
            # A process first seen now ran since the last sample at most: count all its time.
            cpu[rank] = cpu.get(rank, 0.0) + (ticks[pid] - self._ticks.get(pid, 0 if self._at else ticks[pid]))
        for rank, rss in memory.items():
            samples = self.ranks.setdefault(rank, RankSamples())
            samples.memory_peak_bytes = max(samples.memory_peak_bytes, rss)
            if self._at is not None and now > self._at:
                samples.add_cpu(cpu[rank] / _TICKS / (now - self._at))
        self._ticks, self._at = ticks, now

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_seconds": SAMPLE_SECONDS,
            "ranks": {
                str(rank): {"cpu_cores": [round(c, 4) for c in s.cpu_cores], "memory_peak_bytes": s.memory_peak_bytes}
                for rank, s in sorted(self.ranks.items())
            },
        }

    def save(self, job_dir: Path) -> None:
        write_json_atomic(job_dir / USAGE_FILE, self.to_dict())


def read_usage(job_dir: Path) -> list[WorkerUsage]:
    """The job's per-rank use from its usage.json; empty when it has none."""
    try:
        saved = read_json(job_dir / USAGE_FILE)
    except (OSError, ValueError):
        return []
    found = []
    for rank, samples in sorted(saved.get("ranks", {}).items(), key=lambda item: int(item[0])):
        cpu = [float(c) for c in samples.get("cpu_cores", [])]
        found.append(
            WorkerUsage(
                worker=int(rank),
                cpu_p90_cores=percentile(cpu, TARGET_CPU_PERCENTILE),
                cpu_max_cores=max(cpu, default=0.0),
                memory_peak_bytes=int(samples.get("memory_peak_bytes", 0)),
                samples=len(cpu),
            )
        )
    return found


class LocalWorkerUsage:
    """ResourceUsage of the local cluster: the usage.json its job runner keeps per job."""

    def __init__(self, jobs_dir: Path) -> None:
        self._jobs_dir = Path(jobs_dir)

    def worker_usage(self, job_name: str, *, workers: int, since: datetime, now: datetime) -> list[WorkerUsage]:
        if not job_name or "/" in job_name or job_name.startswith("."):
            return []
        return read_usage(self._jobs_dir / job_name)  # one per rank: a worker of one slot each
