"""A kubelet that runs each pod's container as a local process, as the local runtime runs it.

- the model server (`mlcp/inference`, no command: the image's entrypoint) runs as
  `python -m workloads.inference.serve` with the pod's literal env, bound to a free loopback port
  that stands for its `http` containerPort (control/local/serving.py's way);
- an MPIJob's launcher (`mpirun ... python /opt/training/train.py ...`) runs as
  `horovodrun --gloo` on this host (control/local/cluster.py's `local_command`), its metrics on
  the port that stands for worker 0's `metrics` containerPort, so Prometheus finds rank 0 there;
- an MPIJob's worker (sshd on a cluster) stands for one rank of that horovodrun: it runs a
  placeholder process, and when the worker stops (its pod deleted, its node lost) that rank's
  process is killed, as losing the node kills the rank: horovodrun then fails, so does the launcher;
- any other container with a command (the rollout's preview load tester) runs that command with
  `python` mapped to this interpreter and in-cluster Service URLs mapped to a ready endpoint.

Readiness is the container's real HTTP readinessProbe (its port named or numbered, mapped to
the local port); a pod without one is ready while its process runs. A process that exits gives the
pod its phase (Succeeded on exit code 0, else Failed) and exit code; a stopped pod's process tree
is killed (SIGTERM, then SIGKILL after `grace_seconds`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.local.cluster import CONTAINER_CHECKPOINT_DIR, LAUNCHERS, local_command
from control.local.processes import descendants, kill_tree
from control.local.serving_state import ping, python_path, server_port

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
JOB_ROLE_LABEL = "training.kubeflow.org/job-role"
# The platform sets these per process; the caller's own values must not leak into a pod.
_POD_ENV_PREFIXES = ("MODEL_", "SAGEMAKER_", "MLCP_", "HOROVOD_")
_PLACEHOLDER = "import signal; signal.pause()"


def pod_id(pod: Mapping[str, Any]) -> str:
    """A pod's uid: a pod recreated under the same name (a worker after its node was lost) is another."""
    return str(pod["metadata"]["uid"])


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    container: Mapping[str, Any] = pod["spec"]["containers"][0]
    return container


def _literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's literal env (valueFrom needs a cluster and is skipped)."""
    return {item["name"]: str(item["value"]) for item in container.get("env") or [] if "value" in item}


@dataclass
class LocalPod:
    process: subprocess.Popen[bytes]
    ports: dict[int, int]  # containerPort → the local port standing for it
    log: Path
    job: str = ""  # the MPIJob this pod belongs to
    rank: int | None = None  # a worker: the horovod rank it stands for
    admin_port: int = 0  # a model server's loopback fault-injection endpoint
    name: str = ""


class ProcessKubelet:
    """The test server's kubelet (controllers.Kubelet) with local processes. `env` goes to every
    process (the embedded AWS endpoint and keys); `resolve(namespace, service)` gives a Service's
    ready endpoint as `host:port`, or None (the Controllers `bind` their own)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        repo_root: Path,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        horovodrun: str | None = None,
        checkpoints_dir: Path | None = None,
        grace_seconds: float = 10.0,
        ping_timeout: float = 0.5,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.repo_root = Path(repo_root)
        self.env = dict(env or {})
        self.python = python
        self.horovodrun = horovodrun or str(Path(python).parent / "horovodrun")
        self.checkpoints_dir = Path(checkpoints_dir) if checkpoints_dir else self.state_dir / "checkpoints"
        self.grace_seconds = grace_seconds
        self.ping_timeout = ping_timeout
        self.resolve: Callable[[str, str], str | None] = lambda namespace, service: None
        self.pods: dict[str, LocalPod] = {}
        self._metrics_ports: dict[str, int] = {}  # MPIJob → rank 0's metrics port
        self._lock = threading.Lock()
        self._stopping: list[threading.Thread] = []

    def bind(self, resolve: Callable[[str, str], str | None]) -> None:
        self.resolve = resolve

    # -- controllers.Kubelet ------------------------------------------------------------------

    def start(self, pod: dict[str, Any]) -> None:
        with self._lock:
            if pod_id(pod) in self.pods:
                return
            labels = pod["metadata"].get("labels") or {}
            container = _container(pod)
            argv = [str(part) for part in [*(container.get("command") or []), *(container.get("args") or [])]]
            job = labels.get(JOB_NAME_LABEL, "")
            log = self.state_dir / "logs" / f"{pod['metadata']['namespace']}-{pod['metadata']['name']}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            if job and labels.get(JOB_ROLE_LABEL) == "worker":
                self.pods[pod_id(pod)] = self._worker(pod, job, log)
            elif argv and os.path.basename(argv[0]) in LAUNCHERS:
                self.pods[pod_id(pod)] = self._launcher(pod, job, log)
            elif not argv:
                self.pods[pod_id(pod)] = self._model_server(pod, log)
            else:
                self.pods[pod_id(pod)] = self._command(pod, argv, log)

    def ready(self, pod: dict[str, Any]) -> bool:
        local = self.pods.get(pod_id(pod))
        if local is None or local.process.poll() is not None:
            return False
        probe = (_container(pod).get("readinessProbe") or {}).get("httpGet")
        if probe is None:
            return True
        port = self.host_port(pod, _container_port(pod, probe["port"]))
        return probe.get("path", "/") == "/ping" and ping(port, self.ping_timeout)

    def outcome(self, pod: dict[str, Any]) -> str | None:
        code = self.exit_code(pod)
        if code is None:
            return None
        return "Succeeded" if code == 0 else "Failed"

    def exit_code(self, pod: dict[str, Any]) -> int | None:
        local = self.pods.get(pod_id(pod))
        if local is None:
            return None
        code = local.process.poll()
        if code is None:
            return None
        return code if code >= 0 else 128 - code  # killed by a signal: 128 + the signal, as a container runtime says

    def stop(self, pod: dict[str, Any]) -> None:
        """Stop the pod's process on a thread of its own: the controllers call this holding the
        store's lock, and a model server drains for seconds after SIGTERM (a kubelet does not block
        the API server either)."""
        with self._lock:
            local = self.pods.pop(pod_id(pod), None)
        if local is None:
            return
        thread = threading.Thread(target=self._terminate, args=(local,), daemon=True, name="kubelet-stop")
        thread.start()
        self._stopping.append(thread)

    def _terminate(self, local: LocalPod) -> None:
        if local.rank is not None:
            self._kill_rank(local.job, local.rank)
        if local.process.poll() is None:
            kill_tree(local.process.pid, group=True, grace_seconds=self.grace_seconds)
        with contextlib.suppress(subprocess.TimeoutExpired):
            local.process.wait(timeout=self.grace_seconds)

    def host_port(self, pod: dict[str, Any], container_port: int) -> int:
        local = self.pods.get(pod_id(pod))
        return local.ports.get(container_port, container_port) if local else container_port

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        return "127.0.0.1" if pod_id(pod) in self.pods else None

    def fault(self, pod_prefix: str, error_ratio: float, latency_ms: float = 0.0) -> int:
        """Make every running model server whose pod name starts with `pod_prefix` fail `error_ratio`
        of its invocations (its loopback admin endpoint, as LocalServing.fault); returns how many."""
        body = json.dumps({"error_ratio": error_ratio, "latency_ms": latency_ms}).encode()
        done = 0
        for local in list(self.pods.values()):
            if not local.admin_port or not local.name.startswith(pod_prefix) or local.process.poll() is not None:
                continue
            request = urllib.request.Request(
                f"http://127.0.0.1:{local.admin_port}/admin/fault",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
            done += 1
        return done

    def stop_all(self) -> None:
        for thread in self._stopping:
            thread.join(timeout=self.grace_seconds + 5)
        self._stopping.clear()
        for local in list(self.pods.values()):
            if local.process.poll() is None:
                kill_tree(local.process.pid, group=True, grace_seconds=self.grace_seconds)
        self.pods.clear()

    # -- what runs --------------------------------------------------------------------------

    def _spawn(self, argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
        full = {key: value for key, value in os.environ.items() if not key.startswith(_POD_ENV_PREFIXES)}
        full.update(env)
        full.update(self.env)
        full["PYTHONUNBUFFERED"] = "1"
        full["PYTHONPATH"] = python_path(self.repo_root, full)
        with log.open("ab") as handle:
            return subprocess.Popen(
                argv,
                env=full,
                cwd=self.repo_root,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _model_server(self, pod: dict[str, Any], log: Path) -> LocalPod:
        ports = {int(p["containerPort"]): server_port() for p in _container(pod).get("ports") or []}
        admin_port = server_port()
        env = _literal_env(_container(pod))
        env.update(
            {"MLCP_BIND_HOST": "127.0.0.1", "MLCP_ENABLE_FAULT_INJECTION": "1", "MLCP_ADMIN_PORT": str(admin_port)}
        )
        if ports:
            env["SAGEMAKER_BIND_TO_PORT"] = str(next(iter(ports.values())))
        process = self._spawn([self.python, "-m", "workloads.inference.serve"], env, log)
        return LocalPod(process, ports, log, admin_port=admin_port, name=pod["metadata"]["name"])

    def _metrics_port(self, job: str) -> int:
        if job not in self._metrics_ports:
            self._metrics_ports[job] = server_port()
        return self._metrics_ports[job]

    def _launcher(self, pod: dict[str, Any], job: str, log: Path) -> LocalPod:
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        scratch = self.state_dir / "scratch" / pod["metadata"]["name"]
        wrapped = {"spec": {"mpiReplicaSpecs": {"Launcher": {"template": {"spec": pod["spec"]}}}}}
        command = local_command(
            wrapped,
            repo_root=self.repo_root,
            checkpoints_dir=self.checkpoints_dir,
            python=self.python,
            horovodrun=self.horovodrun,
            metrics_port=self._metrics_port(job),
            scratch_dir=scratch,
        )
        return LocalPod(self._spawn(command, _literal_env(_container(pod)), log), {}, log, job=job)

    def _worker(self, pod: dict[str, Any], job: str, log: Path) -> LocalPod:
        rank = int(pod["metadata"]["name"].rsplit("-", 1)[1])
        ports = {int(p["containerPort"]): self._metrics_port(job) for p in _container(pod).get("ports") or []}
        process = self._spawn([self.python, "-c", _PLACEHOLDER], {}, log)
        return LocalPod(process, ports if rank == 0 else {}, log, job=job, rank=rank)

    def _command(self, pod: dict[str, Any], argv: list[str], log: Path) -> LocalPod:
        if os.path.basename(argv[0]).startswith("python"):
            argv[0] = self.python
        namespace = pod["metadata"]["namespace"]
        argv = [self._local_url(namespace, arg) for arg in argv]
        return LocalPod(self._spawn(argv, _literal_env(_container(pod)), log), {}, log)

    def _local_url(self, namespace: str, arg: str) -> str:
        """http://<service>[.<namespace>.svc...][:port]/path → a ready endpoint of that Service."""
        if not arg.startswith("http://"):
            return arg
        parsed = urllib.parse.urlsplit(arg)
        parts = (parsed.hostname or "").split(".")
        address = self.resolve(parts[1] if len(parts) > 1 else namespace, parts[0])
        if address is None:
            return arg
        return urllib.parse.urlunsplit(("http", address, parsed.path, parsed.query, ""))

    def _kill_rank(self, job: str, rank: int) -> None:
        """The horovod rank `rank` of the job's launcher: the process whose env says HOROVOD_RANK=rank."""
        running = list(self.pods.values())
        launchers = [p for p in running if p.job == job and p.rank is None and p.process.poll() is None]
        for launcher in launchers:
            for pid in descendants(launcher.process.pid):
                if _environ(pid).get("HOROVOD_RANK") == str(rank):
                    kill_tree(pid, group=False, grace_seconds=1.0)


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
    return dict(pairs)


def _container_port(pod: Mapping[str, Any], target: int | str) -> int:
    if isinstance(target, int):
        return target
    for port in _container(pod).get("ports") or []:
        if port.get("name") == target:
            return int(port["containerPort"])
    raise LookupError(f"pod {pod['metadata']['name']} has no port named {target!r}")


__all__ = ["CONTAINER_CHECKPOINT_DIR", "LocalPod", "ProcessKubelet", "pod_id"]
