"""The local serving runtime's state on disk, shared by LocalServing and the routers.

    <state_dir>/
        deployments/<name>.json   {"manifest", "replicas", "template_sha256", "pods": [Pod...]}
        services/<name>.json      {"manifest", "selector", "port", "router": {"pid", "start"} | null}
        objects/<Kind>/<name>.json   PDB, HPA, NetworkPolicy, Ingress as applied (nothing runs them)
        logs/<pod>.log, logs/router-<service>.log
        serving-targets.json      Prometheus file_sd of every model-server process
        .lock                     held while changing anything

Every file is replaced atomically, so a reader (a router, another LocalServing) sees the old or
the new content, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import random
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from control.local.processes import process_alive, process_start_time, read_json, write_json_atomic

# Starts argv in its own session with output to a log file, prints its pid and exits at once, so
# the server is nobody's child here (no zombie in a long-lived caller; it outlives the caller).
_LAUNCHER = """\
import subprocess, sys
with open(sys.argv[1], "ab") as log:
    p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
print(p.pid)
"""


@dataclass(frozen=True)
class Pod:
    """One model-server process of a Deployment."""

    pod: str
    pid: int
    start: str | None
    port: int
    admin_port: int
    template_sha256: str
    log: str
    # The kubelet's part (LocalServing.restart_dead): when this process started (epoch seconds), how
    # many times the pod's process was restarted, and when it may be next (0: not seen dead yet).
    started_at: float = 0.0
    restarts: int = 0
    restart_after: float = 0.0

    @property
    def alive(self) -> bool:
        return process_alive(self.pid, self.start)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pod:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ServingState:
    """Paths and reads of the state folder; writers hold `locked()`."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir)
        self.deployments = self.root / "deployments"
        self.services = self.root / "services"
        self.objects = self.root / "objects"
        self.logs = self.root / "logs"

    def ensure(self) -> None:
        for folder in (self.deployments, self.services, self.objects, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.ensure()
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def deployment_path(self, name: str) -> Path:
        return self.deployments / f"{_safe(name)}.json"

    def service_path(self, name: str) -> Path:
        return self.services / f"{_safe(name)}.json"

    def object_path(self, kind: str, name: str) -> Path:
        return self.objects / _safe(kind) / f"{_safe(name)}.json"

    def read_deployment(self, name: str) -> dict[str, Any] | None:
        return _read_or_none(self.deployment_path(name))

    def read_service(self, name: str) -> dict[str, Any] | None:
        return _read_or_none(self.service_path(name))

    def write(self, path: Path, value: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, value)

    def all_deployments(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for path in sorted(self.deployments.glob("[!.]*.json")) if self.deployments.is_dir() else []:
            state = _read_or_none(path)
            if state is not None:
                found[path.stem] = state
        return found

    def all_services(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for path in sorted(self.services.glob("[!.]*.json")) if self.services.is_dir() else []:
            state = _read_or_none(path)
            if state is not None:
                found[path.stem] = state
        return found


def _safe(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise ValueError(f"bad object name {name!r}")
    return name


def _read_or_none(path: Path) -> dict[str, Any] | None:
    try:
        value: dict[str, Any] = read_json(path)
    except FileNotFoundError:
        return None
    return value


# -- manifests --------------------------------------------------------------------------------


def pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    template = deployment.get("spec", {}).get("template", {})
    return dict(template.get("metadata", {}).get("labels") or deployment.get("metadata", {}).get("labels") or {})


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service selector picks pods whose labels include all of its pairs (an empty one none)."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def container_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The first container's literal env (valueFrom needs a cluster and is skipped)."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    return {item["name"]: str(item["value"]) for item in containers[0].get("env") or [] if "value" in item}


def template_sha256(deployment: Mapping[str, Any]) -> str:
    """Identity of the pod template: a changed one replaces the processes."""
    template = deployment.get("spec", {}).get("template", {})
    return hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def recorded_pods(state: Mapping[str, Any] | None) -> list[Pod]:
    """The pods recorded for a Deployment, alive or not."""
    return [Pod.from_dict(p) for p in (state or {}).get("pods", [])]


# -- processes --------------------------------------------------------------------------------


def spawn_detached(
    argv: list[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, python: str
) -> tuple[int, str | None]:
    """Start argv in its own session, reparented away from this process: (pid, start time)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [python, "-S", "-c", _LAUNCHER, str(log_path), *argv],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid = int(done.stdout.strip())
    return pid, process_start_time(pid)


def server_port() -> int:
    """A free loopback port below the kernel's ephemeral range. A model server binds its port
    seconds after it is picked (it imports torch first); an ephemeral port could meanwhile be taken
    by any outgoing connection on this host, a port below the range cannot."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = range(max(1024, low - 12000), low)
    for _ in range(200):
        port = random.choice(candidates)
        if port_free(port):
            return port
    raise OSError(f"no free port found in {candidates.start}-{candidates.stop - 1}")


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (bound as servers bind it: with SO_REUSEADDR, so the
    connections a dead listener left in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def ping(port: int, timeout: float = 0.5) -> bool:
    """GET /ping on 127.0.0.1:port answered 200 (the model is loaded and the server not draining)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def python_path(repo_root: Path, env: Mapping[str, str]) -> str:
    """PYTHONPATH that imports `control` (this checkout) and `workloads` (repo_root)."""
    package_root = str(Path(__file__).resolve().parents[2])
    parts = [package_root, str(repo_root), env.get("PYTHONPATH", "")]
    return os.pathsep.join(dict.fromkeys(part for part in parts if part))
