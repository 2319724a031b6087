"""The controllers the platform relies on, over the server's store (kube-controller-manager's part).

- Deployment → ReplicaSet per pod template (`<deployment>-<template hash>`), the current one at
  the Deployment's replicas and older ones at 0 (a rollout without surge: phase 2 may add it),
  and the Deployment's status from its ReplicaSets;
- ReplicaSet → Pods (`<replicaset>-<n>`), and its status from their readiness;
- the kubelet's part through a `Kubelet`: it starts a pod, says whether it is ready, stops it.
  `ReadyKubelet` makes every pod ready at once; `kubelet.ProcessKubelet` runs the container as a
  local process and asks its readiness probe. A pod deleted through the API (its node lost) is
  stopped at the next round; the pod's status carries the kubelet's phase, IP and exit code;
- Service → Endpoints of the ready pods its selector matches, each at the port the kubelet maps
  the targetPort to (a local process listens on a free port, not on its containerPort);
- Job → one Pod, and the Job's Complete or Failed condition from it;
- MPIJob → worker Pods and a launcher Job, and the MPIJob's conditions as mpi-operator v0.8.0
  writes them (Created, Running, Succeeded or Failed).

`settle()` runs every controller until nothing changes (deterministic: tests and benchmarks call
it between steps); `start()` runs the same loop on a thread, woken by each change to the store.
Controllers write as the system does: straight to the store, with the API's validation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from tests.support.kube_apiserver.api import KubeApi
from tests.support.kube_apiserver.store import Key

TEMPLATE_HASH_LABEL = "pod-template-hash"


class Kubelet(Protocol):
    def start(self, pod: dict[str, Any]) -> None: ...

    def ready(self, pod: dict[str, Any]) -> bool: ...

    def outcome(self, pod: dict[str, Any]) -> str | None:
        """The phase (Succeeded or Failed) once the pod's containers have exited; None while they run."""
        ...

    def stop(self, pod: dict[str, Any]) -> None: ...

    def exit_code(self, pod: dict[str, Any]) -> int | None:
        """The container's exit code once it has exited; None while it runs."""
        ...

    def host_port(self, pod: dict[str, Any], container_port: int) -> int:
        """Where the pod's `container_port` is reached (the same port in a cluster)."""
        ...

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        """The pod's address if the kubelet gives it one, else None (the controllers assign one)."""
        ...


class ReadyKubelet:
    """Every pod runs and is ready as soon as it is scheduled, unless `never_ready(pod)` says not;
    a pod ends when `ends(pod)` gives its phase (Succeeded, Failed), else it runs on."""

    def __init__(
        self,
        never_ready: Callable[[dict[str, Any]], bool] = lambda pod: False,
        ends: Callable[[dict[str, Any]], str | None] = lambda pod: None,
    ) -> None:
        self.never_ready = never_ready
        self.ends = ends
        self.running: set[str] = set()

    def outcome(self, pod: dict[str, Any]) -> str | None:
        return self.ends(pod) if _pod_id(pod) in self.running else None

    def start(self, pod: dict[str, Any]) -> None:
        self.running.add(_pod_id(pod))

    def ready(self, pod: dict[str, Any]) -> bool:
        return _pod_id(pod) in self.running and not self.never_ready(pod)

    def stop(self, pod: dict[str, Any]) -> None:
        self.running.discard(_pod_id(pod))

    def exit_code(self, pod: dict[str, Any]) -> int | None:
        return {"Succeeded": 0, "Failed": 1}.get(self.outcome(pod) or "")

    def host_port(self, pod: dict[str, Any], container_port: int) -> int:
        return container_port

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        return None


def _uid(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["uid"])


def _pod_id(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] for ref in obj["metadata"].get("ownerReferences") or [])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Controllers:
    def __init__(self, api: KubeApi, kubelet: Kubelet | None = None) -> None:
        self.api = api
        self.kubelet = kubelet or ReadyKubelet()
        bind = getattr(self.kubelet, "bind", None)
        if bind is not None:  # a kubelet that resolves Service names asks these controllers' Endpoints
            bind(self.service_address)
        self._started: dict[str, dict[str, Any]] = {}  # pods handed to the kubelet, by uid
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- store access, as the system (no RBAC) ----------------------------------------------------

    def _all(self, group: str, plural: str) -> list[dict[str, Any]]:
        return self.api.store.list(group, plural, None)

    def _key(self, group: str, plural: str, obj: dict[str, Any]) -> Key:
        return (group, plural, obj["metadata"].get("namespace"), obj["metadata"]["name"])

    def _status(self, group: str, plural: str, obj: dict[str, Any], status: dict[str, Any]) -> bool:
        if obj.get("status") == status:
            return False
        self.api.set_status(self._key(group, plural, obj), status)
        return True

    def _delete(self, group: str, plural: str, obj: dict[str, Any]) -> None:
        self.api.store.delete(self._key(group, plural, obj))

    # -- the loops ----------------------------------------------------------------------------

    def settle(self, max_rounds: int = 20) -> int:
        """Run every controller until a round changes nothing; returns the rounds that changed."""
        for rounds in range(max_rounds):
            if not self.reconcile_once():
                return rounds
        raise AssertionError(f"the controllers did not settle in {max_rounds} rounds")

    def reconcile_once(self) -> bool:
        with self.api.store.lock:
            changed = self._deployments()
            changed |= self._mpijobs()
            changed |= self._jobs()
            changed |= self._replicasets()
            changed |= self._pods()
            changed |= self._garbage()
            changed |= self._endpoints()
        return changed

    def start(self) -> Controllers:
        def loop() -> None:
            seen = -1
            while not self._stop.is_set():
                with self.api.store.changed:
                    if self.api.store.resource_version == seen:
                        self.api.store.changed.wait(timeout=0.2)
                seen = self.api.store.resource_version
                self.settle()
                seen = self.api.store.resource_version

        self._thread = threading.Thread(target=loop, daemon=True, name="kube-controllers")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for pod in self._all("", "pods"):
            self.kubelet.stop(pod)
        for pod in self._started.values():  # deleted, not yet noticed
            self.kubelet.stop(pod)
        self._started.clear()

    def service_address(self, namespace: str, name: str) -> str | None:
        """`ip:port` of the first ready endpoint of a Service (its first port), else None."""
        endpoints = self.api.store.get(("", "endpoints", namespace, name))
        for subset in (endpoints or {}).get("subsets") or []:
            if subset.get("addresses") and subset.get("ports"):
                return f"{subset['addresses'][0]['ip']}:{subset['ports'][0]['port']}"
        return None

    # -- Deployment → ReplicaSets ----------------------------------------------------------------

    def _deployments(self) -> bool:
        changed = False
        replicasets = self._all("apps", "replicasets")
        for deployment in self._all("apps", "deployments"):
            spec = deployment["spec"]
            template = copy.deepcopy(spec["template"])
            current_hash = _template_hash(template)
            template["metadata"].setdefault("labels", {})[TEMPLATE_HASH_LABEL] = current_hash
            name = f"{deployment['metadata']['name']}-{current_hash}"
            owned = [rs for rs in replicasets if _owned_by(rs, deployment)]
            current = next((rs for rs in owned if rs["metadata"]["name"] == name), None)
            if current is None:
                selector = copy.deepcopy(spec["selector"])
                selector.setdefault("matchLabels", {})[TEMPLATE_HASH_LABEL] = current_hash
                current = self.api.seed(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "metadata": {
                            "name": name,
                            "namespace": deployment["metadata"]["namespace"],
                            "labels": dict(template["metadata"]["labels"]),
                            "ownerReferences": [_owner(deployment)],
                        },
                        "spec": {"replicas": spec.get("replicas", 1), "selector": selector, "template": template},
                    }
                )
                owned.append(current)
                changed = True
            for rs in owned:
                wanted = spec.get("replicas", 1) if rs["metadata"]["name"] == name else 0
                if rs["spec"].get("replicas") != wanted:
                    rs = self.api.store.get(self._key("apps", "replicasets", rs))
                    assert rs is not None
                    rs["spec"]["replicas"] = wanted
                    self.api.store.put(self._key("apps", "replicasets", rs), rs)
                    changed = True
            statuses = [(rs["metadata"]["name"] == name, rs.get("status") or {}) for rs in owned]
            ready = sum(s.get("readyReplicas", 0) for _, s in statuses)
            status = {
                "observedGeneration": deployment["metadata"].get("generation", 1),
                "replicas": sum(s.get("replicas", 0) for _, s in statuses),
                "updatedReplicas": sum(s.get("replicas", 0) for is_current, s in statuses if is_current),
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
            status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
            changed |= self._status("apps", "deployments", deployment, status)
        return changed

    # -- ReplicaSet → Pods ----------------------------------------------------------------------

    def _replicasets(self) -> bool:
        changed = False
        pods = self._all("", "pods")
        for rs in self._all("apps", "replicasets"):
            owned = sorted((p for p in pods if _owned_by(p, rs)), key=lambda p: p["metadata"]["name"])
            wanted = rs["spec"].get("replicas", 1)
            for pod in owned[wanted:]:
                self.kubelet.stop(pod)
                self._started.pop(_uid(pod), None)
                self._delete("", "pods", pod)
                changed = True
            names = {p["metadata"]["name"] for p in owned}
            index = 0
            while len(names) < wanted:
                name = f"{rs['metadata']['name']}-{index}"
                index += 1
                if name in names:
                    continue
                template = rs["spec"]["template"]
                self.api.seed(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": name,
                            "namespace": rs["metadata"]["namespace"],
                            "labels": dict(template["metadata"].get("labels") or {}),
                            "ownerReferences": [_owner(rs)],
                        },
                        "spec": copy.deepcopy(template["spec"]),
                    }
                )
                names.add(name)
                changed = True
            live = [p for p in self._all("", "pods") if _owned_by(p, rs)]
            ready = sum(_pod_ready(p) for p in live)
            status = {"replicas": len(live), "observedGeneration": rs["metadata"].get("generation", 1)}
            if ready:
                status.update(readyReplicas=ready, availableReplicas=ready)
            changed |= self._status("apps", "replicasets", rs, status)
        return changed

    # -- the kubelet's part ---------------------------------------------------------------------

    def _pods(self) -> bool:
        changed = False
        pods = self._all("", "pods")
        present = {_uid(pod) for pod in pods}
        for gone in [key for key in self._started if key not in present]:  # deleted through the API
            self.kubelet.stop(self._started.pop(gone))
        for index, pod in enumerate(pods):
            if _uid(pod) not in self._started and not (pod.get("status") or {}).get("phase"):
                self.kubelet.start(pod)
                self._started[_uid(pod)] = pod
            phase = (pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed"):
                phase = self.kubelet.outcome(pod) or "Running"
            ready = phase == "Running" and self.kubelet.ready(pod)
            previous = pod.get("status") or {}
            status: dict[str, Any] = {
                "phase": phase,
                "podIP": self.kubelet.pod_ip(pod) or previous.get("podIP") or f"10.0.{index // 250}.{index % 250 + 1}",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            }
            exit_code = self.kubelet.exit_code(pod) if phase in ("Succeeded", "Failed") else None
            if previous.get("containerStatuses") and phase == previous.get("phase"):
                status["containerStatuses"] = previous["containerStatuses"]  # a finished pod keeps its record
            elif exit_code is not None:
                status["containerStatuses"] = [_terminated(pod, exit_code)]
            changed |= self._status("", "pods", pod, status)
        return changed

    def _garbage(self) -> bool:
        """Owned objects whose owner is gone go too (the garbage collector, background policy)."""
        changed = False
        for group, plural in (("apps", "replicasets"), ("batch", "jobs"), ("", "pods")):
            for obj in self._all(group, plural):
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and not any(self._owner_exists(obj, ref) for ref in refs):
                    if plural == "pods":
                        self.kubelet.stop(obj)
                        self._started.pop(_uid(obj), None)
                    self._delete(group, plural, obj)
                    changed = True
        return changed

    def _owner_exists(self, obj: dict[str, Any], ref: dict[str, Any]) -> bool:
        plural = {
            "Deployment": ("apps", "deployments"),
            "ReplicaSet": ("apps", "replicasets"),
            "Job": ("batch", "jobs"),
            "MPIJob": ("kubeflow.org", "mpijobs"),
        }.get(ref["kind"])
        if plural is None:
            return True
        owner = self.api.store.get((*plural, obj["metadata"]["namespace"], ref["name"]))
        return owner is not None and owner["metadata"]["uid"] == ref["uid"]

    # -- Service → Endpoints ----------------------------------------------------------------------

    def _endpoints(self) -> bool:
        changed = False
        pods = self._all("", "pods")
        for service in self._all("", "services"):
            selector = service["spec"].get("selector") or {}
            if not selector:
                continue
            namespace = service["metadata"]["namespace"]
            ready = [
                p
                for p in sorted(pods, key=lambda p: p["metadata"]["name"])
                if p["metadata"]["namespace"] == namespace
                and _selects(selector, p["metadata"].get("labels") or {})
                and _pod_ready(p)
            ]
            subsets: list[dict[str, Any]] = []
            for pod in ready:  # one subset per port mapping: a local process listens on its own port
                ports = [
                    {
                        "name": p.get("name", ""),
                        "port": self.kubelet.host_port(pod, _container_port(pod, p.get("targetPort", p["port"]))),
                        "protocol": p.get("protocol", "TCP"),
                    }
                    for p in service["spec"].get("ports") or []
                ]
                address = {
                    "ip": pod["status"]["podIP"],
                    "targetRef": {
                        "kind": "Pod",
                        "name": pod["metadata"]["name"],
                        "namespace": pod["metadata"]["namespace"],
                    },
                }
                same = next((subset for subset in subsets if subset["ports"] == ports), None)
                if same is None:
                    subsets.append({"addresses": [address], "ports": ports})
                else:
                    same["addresses"].append(address)
            key: Key = ("", "endpoints", service["metadata"]["namespace"], service["metadata"]["name"])
            existing = self.api.store.get(key)
            if existing is None:
                body: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": service["metadata"]["name"], "namespace": service["metadata"]["namespace"]},
                }
                if subsets:
                    body["subsets"] = subsets
                self.api.seed(body)
                changed = True
            elif (existing.get("subsets") or []) != subsets:
                existing["subsets"] = subsets
                self.api.store.put(key, existing)
                changed = True
        return changed

    # -- Job → Pod (one completion, no retries: backoffLimit is phase 2) ------------------------------

    def _pod_for(self, owner: dict[str, Any], name: str, template: dict[str, Any], labels: dict[str, str]) -> None:
        self.api.seed(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": owner["metadata"]["namespace"],
                    "labels": {**(template.get("metadata") or {}).get("labels", {}), **labels},
                    "ownerReferences": [_owner(owner)],
                },
                "spec": copy.deepcopy(template["spec"]),
            }
        )

    def _jobs(self) -> bool:
        changed = False
        pods = self._all("", "pods")
        for job in self._all("batch", "jobs"):
            owned = [p for p in pods if _owned_by(p, job)]
            if not owned:
                self._pod_for(
                    job, f"{job['metadata']['name']}-0", job["spec"]["template"], {"job-name": job["metadata"]["name"]}
                )
                changed = True
                continue
            phases = [(p.get("status") or {}).get("phase") for p in owned]
            status: dict[str, Any] = {}
            if "Succeeded" in phases:
                status = {"succeeded": 1, "conditions": [_condition("Complete", "", "")]}
            elif "Failed" in phases:
                status = {
                    "failed": 1,
                    "conditions": [
                        _condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                    ],
                }
            else:
                status = {"active": len(owned)}
            changed |= self._status("batch", "jobs", job, status)
        return changed

    # -- MPIJob → launcher Job and worker Pods (mpi-operator v0.8.0's shape) --------------------------

    def _mpijobs(self) -> bool:
        changed = False
        pods, jobs = self._all("", "pods"), self._all("batch", "jobs")
        for mpijob in self._all("kubeflow.org", "mpijobs"):
            name = mpijob["metadata"]["name"]
            specs = mpijob["spec"]["mpiReplicaSpecs"]
            labels = {"training.kubeflow.org/job-name": name}
            workers = [p for p in pods if _owned_by(p, mpijob)]
            for index in range(specs["Worker"].get("replicas", 1)):
                worker = f"{name}-worker-{index}"
                if not any(p["metadata"]["name"] == worker for p in workers):
                    self._pod_for(
                        mpijob,
                        worker,
                        specs["Worker"]["template"],
                        {**labels, "training.kubeflow.org/job-role": "worker"},
                    )
                    changed = True
            launcher = next((j for j in jobs if _owned_by(j, mpijob)), None)
            if launcher is None:
                template = copy.deepcopy(specs["Launcher"]["template"])
                template.setdefault("metadata", {}).setdefault("labels", {}).update(
                    {**labels, "training.kubeflow.org/job-role": "launcher"}
                )
                template["spec"].setdefault("restartPolicy", "Never")
                self.api.seed(
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "metadata": {
                            "name": f"{name}-launcher",
                            "namespace": mpijob["metadata"]["namespace"],
                            "labels": labels,
                            "ownerReferences": [_owner(mpijob)],
                        },
                        "spec": {"backoffLimit": 0, "template": template},
                    }
                )
                changed = True
                continue
            job_conditions = {c["type"] for c in (launcher.get("status") or {}).get("conditions") or []}
            running = all((p.get("status") or {}).get("phase") == "Running" for p in workers) and workers
            conditions = [
                _condition("Created", "MPIJobCreated", f"MPIJob {mpijob['metadata']['namespace']}/{name} is created.")
            ]
            if "Complete" in job_conditions:
                conditions += [
                    _condition("Running", "MPIJobRunning", "", status="False"),
                    _condition(
                        "Succeeded",
                        "MPIJobSucceeded",
                        f"MPIJob {mpijob['metadata']['namespace']}/{name} successfully completed.",
                    ),
                ]
            elif "Failed" in job_conditions:
                conditions += [
                    _condition("Running", "MPIJobRunning", "", status="False"),
                    _condition("Failed", "BackoffLimitExceeded/Error", "Job has reached the specified backoff limit"),
                ]
            elif running and (launcher.get("status") or {}).get("active"):
                conditions.append(
                    _condition(
                        "Running", "MPIJobRunning", f"MPIJob {mpijob['metadata']['namespace']}/{name} is running."
                    )
                )
            previous = {c["type"]: c for c in (mpijob.get("status") or {}).get("conditions") or []}
            for condition in conditions:  # a condition keeps its transition time while its status holds
                old = previous.get(condition["type"])
                if old is not None and old.get("status") == condition["status"]:
                    condition["lastTransitionTime"] = old["lastTransitionTime"]
            changed |= self._status("kubeflow.org", "mpijobs", mpijob, {"conditions": conditions})
        return changed


def _job_condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    """A batch/v1 JobCondition (it has no lastUpdateTime)."""
    condition = _condition(kind, reason, message)
    del condition["lastUpdateTime"]
    return condition


def _condition(kind: str, reason: str, message: str, *, status: str = "True") -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "lastUpdateTime": now,
    }


def _terminated(pod: dict[str, Any], exit_code: int) -> dict[str, Any]:
    """A ContainerStatus of the pod's first container, exited with `exit_code`."""
    container = pod["spec"]["containers"][0]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": now,
                "finishedAt": now,
            }
        },
    }


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _container_port(pod: dict[str, Any], target: int | str) -> int:
    """A Service's targetPort on `pod`: a number, or the name of one of its containers' ports."""
    if isinstance(target, int):
        return target
    for container in pod["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    raise LookupError(f"pod {pod['metadata']['name']} has no port named {target!r}")
