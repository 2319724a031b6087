"""The local cluster measures each rank's CPU and memory from its processes (for right-sizing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from control.local.usage import LocalWorkerUsage, UsageSampler, read_usage

# Rank 0 holds 200 MiB and keeps a core busy; rank 1 idles. A process without HOROVOD_RANK (the
# launcher) is not a worker.
BUSY = "x = b'1' * (200 * 2**20); end = __import__('time').time() + 3\nwhile __import__('time').time() < end: pass"
IDLE = "import time; time.sleep(3)"
LAUNCHER = f"""
import os, subprocess, sys
ranks = [subprocess.Popen([sys.executable, "-c", code], env={{**os.environ, "HOROVOD_RANK": str(rank)}})
         for rank, code in enumerate([{BUSY!r}, {IDLE!r}])]
[rank.wait() for rank in ranks]
"""


def test_each_rank_gets_its_cpu_samples_and_memory_peak(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "HOROVOD_RANK"}
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], env=env)
    sampler = UsageSampler(launcher.pid)
    while launcher.poll() is None:
        sampler.sample()
        time.sleep(0.25)
    sampler.save(tmp_path)

    busy, idle = read_usage(tmp_path)
    assert (busy.worker, idle.worker) == (0, 1)
    assert busy.memory_peak_bytes > 200 * 2**20 > idle.memory_peak_bytes
    assert busy.cpu_max_cores > 0.3 > idle.cpu_p90_cores  # a shared 2-core host: a busy core shows at least this
    assert busy.samples >= 5

    now = datetime.now(UTC)
    jobs = tmp_path.parent
    assert LocalWorkerUsage(jobs).worker_usage(tmp_path.name, workers=2, since=now, now=now) == [busy, idle]
    assert LocalWorkerUsage(jobs).worker_usage("no-such-job", workers=2, since=now, now=now) == []
