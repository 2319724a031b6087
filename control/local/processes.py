"""Process and file helpers every local runtime part shares: free ports, process trees, atomic JSON."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- processes --------------------------------------------------------------------------------


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (guards against pid reuse); None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def process_alive(pid: int, start_time: str | None) -> bool:
    if Path("/proc").is_dir():
        current = process_start_time(pid)
        return current is not None and (start_time is None or current == start_time)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, including those that started their own session (horovodrun
    runs each rank under a middleman that calls setsid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_tree(pid: int, *, group: bool, grace_seconds: float) -> None:
    """SIGTERM the process (and its group), its descendants; SIGKILL what is left after grace."""
    victims = [pid, *descendants(pid)] if Path("/proc").is_dir() else [pid]
    starts = {victim: process_start_time(victim) for victim in victims}

    def signal_all(sig: int) -> None:
        if group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        for victim in victims:
            if process_alive(victim, starts[victim]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(victim, sig)

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not any(process_alive(victim, starts[victim]) for victim in victims):
            return
        time.sleep(0.05)
    signal_all(signal.SIGKILL)


# -- files ------------------------------------------------------------------------------------


def write_json_atomic(path: Path, value: Any, *, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind the main thread (SystemExit) so `finally` and `with` blocks stop what a
    script started (the embedded platform's servers, Prometheus, model servers) instead of leaving
    them running: for scripts that start the platform and have no signal handling of their own."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
