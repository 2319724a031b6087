"""Several server processes on one port (MLCP_WORKERS > 1): a supervisor and its workers.

One Python process answers from one core; MMS runs a worker per CPU. With MLCP_WORKERS=N the
process started as `serve` becomes a supervisor that loads nothing itself: it reserves the port,
starts N workers (`python -m workloads.inference.serve` again, each told its index), and each
worker binds the port with SO_REUSEPORT, so the kernel spreads connections across them.

What stays true with several processes:
- readiness: /ping answers 200 only when every worker has loaded and verified the model (a
  shared readiness board, one byte per worker), so no connection lands on a worker still loading
  once the pod is ready; a draining worker turns every /ping 503;
- metrics: counters, histograms and gauges are shared through prometheus_client's multiprocess
  mode, so /metrics from any worker reports the whole server;
- the 429 limit: MLCP_MAX_CONCURRENT_INVOCATIONS is split across the workers (rounded up);
- drain: SIGTERM to the supervisor reaches every worker, each drains as one process does, and the
  supervisor exits 0 once all have; a worker that dies on its own takes the server down (exit 1),
  for Kubernetes to restart the pod rather than serve on with less capacity than it believes.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from workloads.inference.settings import ServerSettings

log = logging.getLogger(__name__)

ENV_WORKER_INDEX = "MLCP_WORKER_INDEX"
ENV_WORKER_BOARD = "MLCP_WORKER_BOARD"
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"

_NOT_READY = 0
_READY = 1


class ReadinessBoard:
    """One byte per worker in a shared file: 1 once that worker serves its verified model."""

    def __init__(self, path: Path, workers: int) -> None:
        self._file = open(path, "r+b")  # noqa: SIM115 - mapped for the process's lifetime
        self._map = mmap.mmap(self._file.fileno(), workers)
        self._workers = workers

    @classmethod
    def create(cls, path: Path, workers: int) -> ReadinessBoard:
        path.write_bytes(bytes(workers))
        return cls(path, workers)

    def mark(self, index: int, ready: bool) -> None:
        self._map[index] = _READY if ready else _NOT_READY

    def all_ready(self) -> bool:
        return self._map[: self._workers].count(_READY) == self._workers

    def close(self) -> None:
        self._map.close()
        self._file.close()


@dataclass(frozen=True)
class WorkerRole:
    """What a worker process is told by its supervisor (through its environment)."""

    index: int
    board: ReadinessBoard

    def mark_ready(self, ready: bool) -> None:
        self.board.mark(self.index, ready)

    @classmethod
    def from_env(cls, settings: ServerSettings, environ: Mapping[str, str] | None = None) -> WorkerRole | None:
        env = os.environ if environ is None else environ
        raw = env.get(ENV_WORKER_INDEX, "")
        if not raw:
            return None
        return cls(int(raw), ReadinessBoard(Path(env[ENV_WORKER_BOARD]), settings.workers))


def worker_share(limit: int, workers: int) -> int:
    """Each worker's part of the server's in-flight limit (0: none), rounded up so that N workers
    together never refuse below the limit."""
    return -(-limit // workers)


def bind_listener(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """Bound with SO_REUSEPORT but not listening: it fixes the port (also when 0 asked the kernel
    for one) for the workers to listen on, and receives no connections itself."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def supervise(settings: ServerSettings) -> int:
    """Runs `settings.workers` worker processes on one port until SIGTERM/SIGINT; 0 once all drained."""
    reservation = reserve_port(settings.host, settings.port)
    port = reservation.getsockname()[1]
    scratch = Path(tempfile.mkdtemp(prefix="mlcp-model-server-"))
    metrics_dir = scratch / "metrics"
    metrics_dir.mkdir()
    board_path = scratch / "ready"
    ReadinessBoard.create(board_path, settings.workers).close()
    env = {
        **os.environ,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        ENV_WORKER_BOARD: str(board_path),
        ENV_METRICS_DIR: str(metrics_dir),
    }
    stopping = False
    workers: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            log.info("signal %d: draining %d workers", signum, len(workers))
        stopping = True
        for process in workers:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(settings.workers):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "workloads.inference.serve"], env={**env, ENV_WORKER_INDEX: str(index)}
                )
            )
        log.info("model server: %d workers on %s:%d", settings.workers, settings.host, port)
        if _a_worker_failed(workers, lambda: stopping):
            forward(signal.SIGTERM, None)  # the others drain too
            for process in workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=settings.drain_timeout_s + 5)
            return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
        reservation.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _a_worker_failed(workers: list[subprocess.Popen[bytes]], stop_asked: Callable[[], bool]) -> bool:
    """Waits until every worker has exited (False) or one exits unasked or non-zero (True)."""
    while True:
        codes = [process.poll() for process in workers]
        exited = [code for code in codes if code is not None]
        if any(code != 0 for code in exited) or (exited and not stop_asked()):
            pid = next(p.pid for p, code in zip(workers, codes, strict=True) if code is not None)
            log.error("a worker (pid %d) exited on its own: stopping the server", pid)
            return True
        if len(exited) == len(workers):
            return False
        time.sleep(0.05)
