"""The test cluster's network, for the pods the process kubelet runs: what kube-proxy and
Prometheus' Kubernetes service discovery do on EKS.

- `ServiceProxies`: each Service of a namespace gets a loopback proxy (control/local/router.py's
  proxy, its upstreams read from the Service's Endpoints rather than the local runtime's state),
  so a client outside the cluster reaches the Service as the local runtime's router lets it; the
  Ingress of a Service's name is played as the ALB: its weighted forward action splits that proxy's
  requests across the weighted Services' Endpoints (a canary);
- `PodDiscovery`: Prometheus file_sd target groups for the running pods, with the
  `__meta_kubernetes_*` labels the pod role of Kubernetes discovery gives (dashboards/scrape.py's
  `pod_target`), at the local port the kubelet maps each containerPort to: the PodMonitors the
  chart renders relabel them as on EKS;
- `ClusterNetwork`: both, kept in step with the store on a thread.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from control.local.processes import free_port, write_json_atomic
from control.local.router import ProxyServer, Route, Router, Upstream
from control.manifests.config import LABEL_VERSION
from dashboards.scrape import pod_target
from tests.support.alb_actions import controller_errors, forward_weights
from tests.support.kube_apiserver.api import KubeApi
from tests.support.kube_apiserver.kubelet import ProcessKubelet

REFRESH_SECONDS = 0.25


class EndpointsRouter(Router):
    """The proxy's route from a Service's Endpoints: every ready address, round-robin.

    It also plays the ALB for the Ingress of the Service's name: when that Ingress forwards to weighted
    Services through an `alb.ingress.kubernetes.io/actions.<name>` annotation (the AWS Load Balancer
    Controller's format, checked as the controller checks it), the requests are split across those
    Services' Endpoints by weight with the local router's pick; an Ingress the controller would
    reject changes nothing, as on EKS."""

    def __init__(
        self, api: KubeApi, namespace: str, service: str
    ) -> None:  # no Router.__init__: no local serving state
        self.api = api
        self.namespace = namespace
        self._seen: str | None = None
        self._start_routing(service)

    def current(self) -> Route:
        self.refresh()
        split = self.split
        chosen = split[0][0] if len(split) == 1 else self._pick.choose(split)
        return self.routes.get(chosen) or Route({}, (), ())

    def _ingress(self) -> dict[str, Any] | None:
        return self.api.store.get(("networking.k8s.io", "ingresses", self.namespace, self.service))

    def _read_split(self, ingress: dict[str, Any] | None) -> tuple[tuple[str, int], ...]:
        """The Ingress's weighted Services with a weight above 0; just this Service without one."""
        if ingress is not None and not controller_errors(ingress):
            weights = tuple((name, weight) for name, weight in forward_weights(ingress).items() if weight > 0)
            if weights:
                return weights
        return ((self.service, 1),)

    def _objects(self, service: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return (
            self.api.store.get(("", "endpoints", self.namespace, service)),
            self.api.store.get(("", "services", self.namespace, service)),
        )

    def _build_route(self, endpoints: dict[str, Any] | None, service: dict[str, Any] | None) -> Route:
        upstreams = []
        for subset in (endpoints or {}).get("subsets") or []:
            port = int(subset["ports"][0]["port"])
            for address in subset.get("addresses") or []:
                pod_name = address["targetRef"]["name"]
                pod = self.api.store.get(("", "pods", self.namespace, pod_name)) or {"metadata": {}}
                version = (pod["metadata"].get("labels") or {}).get(LABEL_VERSION, "")
                upstreams.append(Upstream(pod_name, port, version))
        selector = dict(((service or {}).get("spec") or {}).get("selector") or {})
        return Route(selector, tuple(upstreams), tuple(upstreams))

    def refresh(self, *, only_if_changed: bool = False, max_age: float = 0.0) -> None:
        ingress = self._ingress()
        split = self._read_split(ingress)
        names = sorted({name for name, _ in split} | {self.service})
        objects = {name: self._objects(name) for name in names}
        stamps = [_version(ingress)] + [_version(obj) for name in names for obj in objects[name]]
        stamp = "/".join([*names, *stamps])
        with self._lock:
            if stamp == self._seen:
                return
            previous = self.routes
            routes = {}
            for name in names:
                route = self._build_route(*objects[name])
                old = previous.get(name)
                keep = old is not None and (old.selector, old.ready) == (route.selector, route.ready)
                routes[name] = old if keep and old is not None else route  # keeps its round-robin turn
            self.routes = routes  # the routes first: a request that sees the new split finds its route
            self.split = split
            self._seen = stamp
            self._refreshed_at = time.monotonic()


def _version(obj: dict[str, Any] | None) -> str:
    return str((obj or {}).get("metadata", {}).get("resourceVersion"))


class ServiceProxies:
    """One loopback proxy per Service of `namespace`, started as the Service appears."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.proxies: dict[str, tuple[str, ProxyServer, threading.Thread]] = {}  # name → (uid, server, thread)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.proxies[service][1].server_address[1]}"

    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in list(self.proxies)}

    def sync(self) -> None:
        services = {s["metadata"]["name"]: s for s in self.api.store.list("", "services", self.namespace)}
        for name, (uid, _, _) in list(self.proxies.items()):
            if name not in services or services[name]["metadata"]["uid"] != uid:
                self._close(name)
        for name, service in services.items():
            if name not in self.proxies:
                server = ProxyServer(("127.0.0.1", free_port()), EndpointsRouter(self.api, self.namespace, name))
                thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
                thread.start()
                self.proxies[name] = (service["metadata"]["uid"], server, thread)

    def _close(self, name: str) -> None:
        _, server, thread = self.proxies.pop(name)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    def stop(self) -> None:
        for name in list(self.proxies):
            self._close(name)


class PodDiscovery:
    """File_sd target groups of the running pods of a namespace, one per container port."""

    def __init__(self, api: KubeApi, kubelet: ProcessKubelet, namespace: str, targets_file: Path) -> None:
        self.api = api
        self.kubelet = kubelet
        self.namespace = namespace
        self.targets_file = targets_file
        self._written: list[dict[str, Any]] | None = None

    def groups(self) -> list[dict[str, Any]]:
        groups = []
        for pod in sorted(self.api.store.list("", "pods", self.namespace), key=lambda p: p["metadata"]["name"]):
            phase = (pod.get("status") or {}).get("phase")
            if phase != "Running":
                continue
            for container in pod["spec"]["containers"]:
                for port in container.get("ports") or []:
                    local = self.kubelet.host_port(pod, int(port["containerPort"]))
                    groups.append(
                        pod_target(
                            f"127.0.0.1:{local}",
                            namespace=self.namespace,
                            pod=pod["metadata"]["name"],
                            container=container["name"],
                            port=int(port["containerPort"]),
                            labels=pod["metadata"].get("labels") or {},
                            phase=phase,
                        )
                    )
        return groups

    def sync(self) -> None:
        groups = self.groups()
        if groups != self._written:
            self.targets_file.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.targets_file, groups)
            self._written = groups


class ClusterNetwork:
    """Service proxies and pod discovery kept in step with the store, every REFRESH_SECONDS."""

    def __init__(self, proxies: ServiceProxies, discoveries: list[PodDiscovery]) -> None:
        self.proxies = proxies
        self.discoveries = discoveries
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        self.proxies.sync()
        for discovery in self.discoveries:
            discovery.sync()

    def start(self) -> ClusterNetwork:
        def loop() -> None:
            while not self._stop.wait(REFRESH_SECONDS):
                self.sync()

        self.sync()
        self._thread = threading.Thread(target=loop, daemon=True, name="cluster-network")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.proxies.stop()
