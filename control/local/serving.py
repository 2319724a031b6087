"""The local serving runtime: ServingCluster on this host.

A Deployment runs as `spec.replicas` model-server processes (`python -m workloads.inference.serve`)
on free loopback ports; a Service runs as a router process (control/local/router.py) that sends each
request to the ready processes of the version its selector picks; a Job (the rollout's preview-traffic
load test) runs its container's command as one process, with any in-cluster Service URL in its
arguments pointed at that Service's local router. Other kinds (PDB, HPA, NetworkPolicy, Ingress) are
recorded and nothing runs them. All state is in `state_dir` (layout in
serving_state.py), so any process, a fresh LocalServing included, sees the same thing; processes
run detached, in their own sessions, and outlive the caller until stopped.

A model-server process that dies is started again in its pod's place, as a kubelet restarts a
crashed container: `restart_dead` (run every second by `start_kubelet`, which the embedded runtime
starts) restarts it at once the first time, then after a back-off that doubles up to a cap
(CrashLoopBackOff: 10 s to 5 min on a kubelet, shorter here), reset once the process had run for a
while; an `apply` or a `scale_deployment` also restarts what died at once (readiness shows a dead
process at once). Difference from a cluster, on purpose: a changed pod template replaces the
processes at once rather than rolling (a blue-green rollout never changes a version's template).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from control.domain.serving import DeploymentReadiness
from control.errors import DependencyError, NotFound
from control.local.processes import process_alive, write_json_atomic
from control.local.serving_state import (
    Pod,
    ServingState,
    container_env,
    ping,
    pod_labels,
    python_path,
    recorded_pods,
    server_port,
    spawn_detached,
    template_sha256,
)
from control.manifests.serving import weights_of_ingress
from control.manifests.status import autoscaling_status
from dashboards.scrape import pod_target

log = logging.getLogger(__name__)

TARGETS_FILE = "serving-targets.json"
RECORDED_KINDS = ("PodDisruptionBudget", "HorizontalPodAutoscaler", "VerticalPodAutoscaler", "NetworkPolicy", "Ingress")
# The platform sets these per process; the caller's own values must not leak into a server.
_SERVER_ENV_PREFIXES = ("MODEL_", "SAGEMAKER_", "MLCP_")


class LocalServing:
    """ServingCluster on this host. `env` is added to every model server's environment (the
    embedded AWS endpoint and credentials for s3:// model URIs); it is never written to disk."""

    def __init__(
        self,
        state_dir: Path,
        *,
        repo_root: Path,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        targets_file: Path | None = None,
        grace_seconds: float = 30.0,
        ping_timeout: float = 0.5,
        router_start_timeout: float = 15.0,
        restart_backoff: tuple[float, float] = (1.0, 30.0),
        backoff_reset_seconds: float = 120.0,
    ) -> None:
        """`restart_backoff`: (first, most) seconds between restarts of a pod whose process keeps
        dying (a kubelet's 10 s and 5 min, shorter on one machine); `backoff_reset_seconds`: a process
        that ran this long before dying is restarted at once again (a kubelet's 10 min)."""
        self.state = ServingState(Path(state_dir))
        self.repo_root = Path(repo_root)
        self.env = dict(env or {})
        self.python = python
        self.targets_file = Path(targets_file) if targets_file else self.state.root / TARGETS_FILE
        self.grace_seconds = grace_seconds
        self.ping_timeout = ping_timeout
        self.router_start_timeout = router_start_timeout
        self.restart_backoff = restart_backoff
        self.backoff_reset_seconds = backoff_reset_seconds
        self._kubelet: threading.Thread | None = None
        self._kubelet_stop = threading.Event()

    # -- ServingCluster -----------------------------------------------------------------------

    def apply(self, manifest: dict[str, Any]) -> None:
        """Create or update an object. On update a Deployment's replicas and a Service's selector
        stay as they are. Dead model servers and a dead router are restarted."""
        kind, name = manifest.get("kind"), manifest.get("metadata", {}).get("name", "")
        if kind == "Deployment":
            self._apply_deployment(manifest)
        elif kind == "Service":
            self._apply_service(manifest)
        elif kind == "Job":
            self._apply_job(manifest)
        elif kind in RECORDED_KINDS:
            with self.state.locked():
                self.state.write(self.state.object_path(kind, name), manifest)
        else:
            raise ValueError(f"the local serving runtime does not apply {kind} objects")

    def scale_deployment(self, name: str, replicas: int) -> None:
        """Start or stop (SIGTERM: the server drains) processes to reach `replicas`."""
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        with self.state.locked():
            state = self._deployment(name)
            state["replicas"] = replicas
            stopping = self._reconcile(name, state)
        _terminate(stopping)

    def deployment_readiness(self, name: str) -> DeploymentReadiness:
        state = self._deployment(name)
        pods = [pod for pod in recorded_pods(state) if pod.alive]
        current = [pod for pod in pods if pod.template_sha256 == state["template_sha256"]]
        ready = sum(self._ping_all(current))
        return DeploymentReadiness(
            name=name,
            desired=state["replicas"],
            ready=ready,
            updated=len(current),
            available=ready,
            observed=True,
        )

    def service_selector(self, name: str) -> dict[str, str]:
        return dict(self._service(name)["selector"])

    def switch_service_selector(self, name: str, selector: Mapping[str, str]) -> bool:
        """Point the Service at `selector` (one atomic file replace: the router sends each request
        entirely to the old or the new version). False, writing nothing, if it already does."""
        with self.state.locked():
            state = self._service(name)
            if state["selector"] == dict(selector):
                return False
            state["selector"] = dict(selector)
            self.state.write(self.state.service_path(name), state)
        return True

    def delete_deployment(self, name: str) -> None:
        """Stop the version's processes and delete it with its PDB, HPA and VPA. Idempotent."""
        with self.state.locked():
            state = self.state.read_deployment(name)
            for kind in ("VerticalPodAutoscaler", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
                self.state.object_path(kind, name).unlink(missing_ok=True)
            if state is None:
                return
            self.state.deployment_path(name).unlink(missing_ok=True)
            self._write_targets()
        _terminate(recorded_pods(state))

    def ingress_weights(self, name: str) -> dict[str, int]:
        manifest = _read_json_or_none(self.state.object_path("Ingress", name))
        return weights_of_ingress(manifest) if manifest else {}

    # -- beyond the port ----------------------------------------------------------------------

    def delete(self, kind: str, name: str) -> None:
        """Delete any object applied here (a Service stops its router). Idempotent."""
        if kind == "Deployment":
            self.delete_deployment(name)
            return
        if kind == "Service":
            with self.state.locked():
                state = self.state.read_service(name)
                self.state.service_path(name).unlink(missing_ok=True)
            if state and state.get("router"):
                _terminate([_router_pod(name, state)])
            return
        if kind == "Job":
            with self.state.locked():
                path = self.state.object_path("Job", name)
                job = _read_json_or_none(path)
                path.unlink(missing_ok=True)
            if job and job.get("process"):
                _terminate([_job_pod(name, job)])
            return
        if kind not in RECORDED_KINDS:
            raise ValueError(f"the local serving runtime does not apply {kind} objects")
        with self.state.locked():
            self.state.object_path(kind, name).unlink(missing_ok=True)

    def autoscaling(self, name: str) -> dict[str, Any]:
        """The recorded HPA with the version's replica count as its status, and the recorded VPA:
        no VPA recommender runs on this host, so it never has a recommendation here."""
        hpa = vpa = None
        with contextlib.suppress(OSError, ValueError):
            hpa = json.loads(self.state.object_path("HorizontalPodAutoscaler", name).read_text())
        with contextlib.suppress(OSError, ValueError):
            vpa = json.loads(self.state.object_path("VerticalPodAutoscaler", name).read_text())
        state = self.state.read_deployment(name)
        if hpa is not None and state is not None:
            replicas = state.get("replicas")
            hpa["status"] = {"currentReplicas": replicas, "desiredReplicas": replicas}
        shown = autoscaling_status(hpa, vpa)
        if shown["vpa"] is not None:
            shown["vpa"]["note"] = "the embedded platform runs no VPA recommender: recommendations come on EKS"
        return shown

    def job_exists(self, name: str) -> bool:
        return self.state.object_path("Job", name).is_file()

    def job_log(self, name: str) -> str:
        """What the Job's process wrote so far ("" if it has not started)."""
        job = _read_json_or_none(self.state.object_path("Job", name))
        log = Path(job["log"]) if job and job.get("log") else None
        return log.read_text(errors="replace") if log and log.is_file() else ""

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._service(name)['port']}"

    def pods(self, deployment_name: str) -> list[Pod]:
        """The processes recorded for a Deployment (alive or not)."""
        return recorded_pods(self._deployment(deployment_name))

    def fault(self, deployment_name: str, error_ratio: float, latency_ms: float = 0.0) -> None:
        """Make every live process of a version fail `error_ratio` of its invocations and answer
        `latency_ms` later (through its loopback admin endpoint); 0, 0 clears it."""
        body = json.dumps({"error_ratio": error_ratio, "latency_ms": latency_ms}).encode()
        for pod in self.pods(deployment_name):
            if not pod.alive:
                continue
            if not pod.admin_port:
                raise DependencyError(
                    f"{pod.pod} runs several model-server processes (MLCP_WORKERS > 1): fault injection needs one"
                )
            request = urllib.request.Request(
                f"http://127.0.0.1:{pod.admin_port}/admin/fault",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
            except (OSError, urllib.error.HTTPError) as exc:
                raise DependencyError(f"could not set the fault on {pod.pod}: {exc}") from exc

    def stop_all(self) -> None:
        """Stop every process started here: model servers and routers (and this object's kubelet
        thread). Desired replicas and selectors stay recorded, so `apply` and `scale_deployment` start
        them again."""
        self.stop_kubelet()
        stopping: list[Pod] = []
        with self.state.locked():
            for name, state in self.state.all_deployments().items():
                stopping.extend(recorded_pods(state))
                state["pods"] = []
                self.state.write(self.state.deployment_path(name), state)
            for path in sorted((self.state.objects / "Job").glob("[!.]*.json")):
                job = _read_json_or_none(path)
                if job and job.get("process"):
                    stopping.append(_job_pod(path.stem, job))
            for name, state in self.state.all_services().items():
                if state.get("router"):
                    stopping.append(_router_pod(name, state))
                    state["router"] = None
                    self.state.write(self.state.service_path(name), state)
            self._write_targets()
        _terminate(stopping, wait_seconds=self.grace_seconds)

    # -- the kubelet's restarts ---------------------------------------------------------------

    def restart_dead(self, now: float | None = None) -> int:
        """Start again each dead model-server process of a Deployment's current template, in its
        pod's place (same name and log, a new port), once its back-off has passed; returns how many
        were started. The first death is restarted at once, the next after `restart_backoff[0]`, then
        twice as long each time up to `restart_backoff[1]`."""
        now = time.time() if now is None else now
        if not self._any_dead():  # the usual pass, every second: no lock taken, nothing written
            return 0
        started = 0
        with self.state.locked():
            for name, state in self.state.all_deployments().items():
                pods, changed = [], False
                for pod in recorded_pods(state):
                    if pod.template_sha256 != state["template_sha256"] or pod.alive:
                        pods.append(pod)
                        continue
                    if not pod.restart_after:  # seen dead for the first time: when may it restart?
                        ran_long = pod.started_at and now - pod.started_at >= self.backoff_reset_seconds
                        restarts = 0 if ran_long else pod.restarts
                        pod = replace(pod, restarts=restarts, restart_after=now + self._backoff(restarts))
                        changed = True
                    if now >= pod.restart_after:
                        pod = self._start_pod(name, state, replacing=pod)
                        started += 1
                        changed = True
                    pods.append(pod)
                if changed:
                    state["pods"] = [pod.as_dict() for pod in pods]
                    self.state.write(self.state.deployment_path(name), state)
            if started:
                self._write_targets()
        return started

    def _any_dead(self) -> bool:
        """Whether some Deployment's current-template process is dead (a read of the state files,
        which are replaced whole, so no lock is needed to look)."""
        return any(
            pod.template_sha256 == state["template_sha256"] and not pod.alive
            for state in self.state.all_deployments().values()
            for pod in recorded_pods(state)
        )

    def _backoff(self, restarts: int) -> float:
        first, most = self.restart_backoff
        return 0.0 if restarts == 0 else min(first * 2 ** (restarts - 1), most)

    def start_kubelet(self, every_seconds: float = 1.0) -> None:
        """Run `restart_dead` every `every_seconds` in a thread of this process until `stop_all`."""
        if self._kubelet is not None:
            return
        self._kubelet_stop.clear()

        def run() -> None:
            while not self._kubelet_stop.wait(every_seconds):
                try:
                    self.restart_dead()
                except Exception:  # a failed pass is tried again at the next one, as a kubelet's sync loop
                    log.exception("restarting dead model servers failed")

        self._kubelet = threading.Thread(target=run, name="local-kubelet", daemon=True)
        self._kubelet.start()

    def stop_kubelet(self) -> None:
        self._kubelet_stop.set()
        if self._kubelet is not None:
            self._kubelet.join(timeout=10)
            self._kubelet = None

    # -- Deployments --------------------------------------------------------------------------

    def _deployment(self, name: str) -> dict[str, Any]:
        state = self.state.read_deployment(name)
        if state is None:
            raise NotFound(f"Deployment {name} not found")
        return state

    def _apply_deployment(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        with self.state.locked():
            state = self.state.read_deployment(name)
            if state is None:
                replicas = manifest.get("spec", {}).get("replicas")
                state = {"replicas": 1 if replicas is None else int(replicas), "pods": []}
            state["manifest"] = copy.deepcopy(manifest)
            state["template_sha256"] = template_sha256(manifest)
            stopping = self._reconcile(name, state)
        _terminate(stopping)

    def _reconcile(self, name: str, state: dict[str, Any]) -> list[Pod]:
        """Forget dead processes, keep up to `replicas` live ones of the current template, start the
        missing ones; record it all. Returns the processes to stop (after the state says so, so a
        router no longer picks them)."""
        live: list[Pod] = []
        stopping: list[Pod] = []
        for pod in recorded_pods(state):
            if not pod.alive:
                continue
            (live if pod.template_sha256 == state["template_sha256"] else stopping).append(pod)
        stopping.extend(live[state["replicas"] :])
        live = live[: state["replicas"]]
        while len(live) < state["replicas"]:
            live.append(self._start_pod(name, state))
        state["pods"] = [pod.as_dict() for pod in live]
        self.state.write(self.state.deployment_path(name), state)
        self._write_targets()
        return stopping

    def _start_pod(self, name: str, state: Mapping[str, Any], replacing: Pod | None = None) -> Pod:
        """A new model-server process: a new pod, or `replacing`'s dead process in its place."""
        port = server_port()
        admin_port = server_port()
        while admin_port == port:
            admin_port = server_port()
        pod_name = replacing.pod if replacing else f"{name}-{state['template_sha256'][:8]}-{uuid.uuid4().hex[:5]}"
        env = {key: value for key, value in os.environ.items() if not key.startswith(_SERVER_ENV_PREFIXES)}
        env.update(container_env(state["manifest"]))  # MLCP_WORKERS included: as many processes as on EKS
        env.update(self.env)
        env.update({"SAGEMAKER_BIND_TO_PORT": str(port), "MLCP_BIND_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
        if env.get("MLCP_WORKERS", "1") == "1":  # the admin endpoint changes one process's faults
            env.update({"MLCP_ENABLE_FAULT_INJECTION": "1", "MLCP_ADMIN_PORT": str(admin_port)})
        else:
            admin_port = 0
        env["PYTHONPATH"] = python_path(self.repo_root, env)
        log_path = self.state.logs / f"{pod_name}.log"
        pid, start = spawn_detached(
            [self.python, "-m", "workloads.inference.serve"],
            env=env,
            cwd=self.repo_root,
            log_path=log_path,
            python=self.python,
        )
        restarts = replacing.restarts + 1 if replacing else 0
        return Pod(
            pod_name, pid, start, port, admin_port, state["template_sha256"], str(log_path), time.time(), restarts
        )

    def _ping_all(self, pods: list[Pod]) -> list[bool]:
        if len(pods) <= 1:
            return [ping(pod.port, self.ping_timeout) for pod in pods]
        with ThreadPoolExecutor(min(len(pods), 16)) as pool:
            return list(pool.map(lambda pod: ping(pod.port, self.ping_timeout), pods))

    def _write_targets(self) -> None:
        """Prometheus file_sd: one target per model-server process, with the meta labels Kubernetes
        discovery gives a pod; the PodMonitor's relabelings (dashboards/scrape.py) do the rest."""
        groups = []
        for state in self.state.all_deployments().values():
            labels = pod_labels(state["manifest"])
            namespace = state["manifest"].get("metadata", {}).get("namespace") or "default"
            container = state["manifest"]["spec"]["template"]["spec"]["containers"][0]
            ports = container.get("ports") or [{"containerPort": 0}]
            for pod in recorded_pods(state):
                groups.append(
                    pod_target(
                        f"127.0.0.1:{pod.port}",
                        namespace=namespace,
                        pod=pod.pod,
                        container=container["name"],
                        port=ports[0]["containerPort"],
                        labels=labels,
                    )
                )
        self.targets_file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.targets_file, groups)

    # -- Jobs ---------------------------------------------------------------------------------

    def _apply_job(self, manifest: dict[str, Any]) -> None:
        """Start the Job's command once (a Job's template cannot change; applying it again is a no-op)."""
        name = manifest["metadata"]["name"]
        containers = manifest.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
        argv = [str(part) for part in [*(containers[0].get("command") or []), *(containers[0].get("args") or [])]]
        if not argv:
            raise ValueError(f"Job {name} has no command to run")
        with self.state.locked():
            path = self.state.object_path("Job", name)
            if path.is_file():
                return
            if os.path.basename(argv[0]).startswith("python"):
                argv[0] = self.python
            argv = [self._local_url(arg) for arg in argv]
            env = {key: value for key, value in os.environ.items() if not key.startswith(_SERVER_ENV_PREFIXES)}
            env.update({item["name"]: str(item["value"]) for item in containers[0].get("env") or [] if "value" in item})
            env.update(self.env)
            env["PYTHONUNBUFFERED"] = "1"
            env["PYTHONPATH"] = python_path(self.repo_root, env)
            log_path = self.state.logs / f"job-{name}.log"
            pid, start = spawn_detached(argv, env=env, cwd=self.repo_root, log_path=log_path, python=self.python)
            job = {"manifest": copy.deepcopy(manifest), "argv": argv, "process": {"pid": pid, "start": start}}
            self.state.write(path, {**job, "log": str(log_path)})

    def _local_url(self, arg: str) -> str:
        """http://<service>[.<namespace>.svc...]:<port>/path → the Service's router, same path."""
        if not arg.startswith("http://"):
            return arg
        parsed = urllib.parse.urlsplit(arg)
        service = (parsed.hostname or "").split(".", 1)[0]
        state = self.state.read_service(service) if service else None
        if state is None:
            return arg
        return urllib.parse.urlunsplit(("http", f"127.0.0.1:{state['port']}", parsed.path, parsed.query, ""))

    # -- Services -----------------------------------------------------------------------------

    def _service(self, name: str) -> dict[str, Any]:
        state = self.state.read_service(name)
        if state is None:
            raise NotFound(f"Service {name} not found")
        return state

    def _apply_service(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        with self.state.locked():
            state = self.state.read_service(name)
            if state is None:
                selector = dict(manifest.get("spec", {}).get("selector") or {})
                state = {"selector": selector, "port": server_port(), "router": None}
            state["manifest"] = copy.deepcopy(manifest)
            path = self.state.service_path(name)
            router = state.get("router")
            if router and process_alive(router["pid"], router["start"]):
                self.state.write(path, state)
                return
            state["router"] = None
            self.state.write(path, state)  # the router reads its selector from here
            pid, start = self._start_router(name, state["port"])
            state["router"] = {"pid": pid, "start": start}
            self.state.write(path, state)
        self._wait_router(name, state)

    def _start_router(self, name: str, port: int) -> tuple[int, str | None]:
        env = dict(os.environ)
        env["PYTHONPATH"] = python_path(self.repo_root, env)
        argv = [self.python, "-m", "control.local.router", "--state-dir", str(self.state.root)]
        argv += ["--service", name, "--port", str(port)]
        return spawn_detached(
            argv, env=env, cwd=self.repo_root, log_path=self.state.logs / f"router-{name}.log", python=self.python
        )

    def _wait_router(self, name: str, state: Mapping[str, Any]) -> None:
        deadline = time.monotonic() + self.router_start_timeout
        router = state["router"]
        while time.monotonic() < deadline:
            if not process_alive(router["pid"], router["start"]):
                log = (self.state.logs / f"router-{name}.log").read_text(errors="replace")[-2000:]
                raise DependencyError(f"the router of Service {name} exited:\n{log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{state['port']}/_router/status", timeout=1) as reply:
                    reply.read()
                return
            except OSError:
                time.sleep(0.05)
        raise DependencyError(f"the router of Service {name} did not answer within {self.router_start_timeout} s")


def _job_pod(name: str, job: Mapping[str, Any]) -> Pod:
    process = job["process"]
    return Pod(f"job-{name}", process["pid"], process["start"], 0, 0, "", str(job.get("log", "")))


def _read_json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        value: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return value


def _router_pod(name: str, state: Mapping[str, Any]) -> Pod:
    router = state["router"]
    return Pod(f"router-{name}", router["pid"], router["start"], state["port"], 0, "", "")


def _terminate(pods: Iterable[Pod], *, wait_seconds: float = 0.0) -> None:
    """SIGTERM each live process (a model server drains, then exits). With wait_seconds, wait for
    them and SIGKILL whatever is left after that."""
    live = [pod for pod in pods if pod.alive]
    for pod in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pod.pid, signal.SIGTERM)
    if not wait_seconds:
        return
    deadline = time.monotonic() + wait_seconds
    while live and time.monotonic() < deadline:
        live = [pod for pod in live if pod.alive]
        time.sleep(0.05)
    for pod in live:
        if process_alive(pod.pid, pod.start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pod.pid, signal.SIGKILL)
