"""The local Service: a loopback reverse proxy, one process per Service.

    python -m control.local.router --state-dir DIR --service NAME --port PORT

Every request (any method, path, headers, body) goes to one ready model-server process of the
version the Service's selector picks, round-robin. The selector is re-read when its file changes
(one stat per request), and each request takes the route once: it is sent entirely to the old or
the new version, and requests in flight when the selector switches complete where they started.
A connection that fails before any response byte (refused, reset: a process that died or is
draining, a keep-alive connection the server closed) is retried on a fresh connection, then on
the next upstream of the same version; nothing is retried once a response has started.
Answers carry `X-Mlcp-Pod` and `X-Model-Version`. `GET /_router/status` shows the route.

A canary: when the deployment's Ingress (of the Service's name, recorded as applied) forwards to
weighted Services, as the ALB does on EKS, this router splits the requests by those weights (smooth
weighted round robin: exact shares, interleaved), each going to the version the chosen Service selects.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from control.local.serving_state import ServingState, ping, pod_labels, recorded_pods, selects
from control.manifests.config import LABEL_VERSION
from control.manifests.serving import weights_of_ingress

REFRESH_SECONDS = 0.25
RECHECK_SECONDS = 0.05  # with nothing ready, look again at most this often (per request otherwise)
PING_TIMEOUT = 0.5
UPSTREAM_TIMEOUT = 75.0  # above the model server's longest injected latency (60 s)
MAX_IDLE_PER_UPSTREAM = 64
STATUS_PATH = "/_router/status"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",  # 100-continue was answered here already
    }
)
# Failures that mean the upstream never got to answer: safe to send the request elsewhere.
_NOT_ANSWERED = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class Upstream(NamedTuple):
    pod: str
    port: int
    version: str


@dataclass(frozen=True)
class Route:
    """What one request is sent to: immutable, replaced as a whole when anything changes."""

    selector: dict[str, str]
    ready: tuple[Upstream, ...]
    alive: tuple[Upstream, ...]  # live processes of the version, ready or not (the fallback)
    _turn: Iterator[int] = field(default_factory=itertools.count, compare=False)

    def order(self) -> list[Upstream]:
        """Ready upstreams starting at the next in turn. Like a Service's endpoints, never a
        process that is not ready: a model that is still loading would answer 503 and count
        as that version's error in the rollout's analysis."""
        ready = list(self.ready)
        if ready:
            start = next(self._turn) % len(ready)
            ready = ready[start:] + ready[:start]
        return ready


class WeightedPick:
    """Smooth weighted round robin (nginx's): over any run of requests each Service gets its share,
    give or take one request, and the shares are interleaved rather than sent in bursts."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()

    def choose(self, weights: tuple[tuple[str, int], ...]) -> str:
        total = sum(weight for _, weight in weights)
        with self._lock:
            for name, weight in weights:
                self._current[name] = self._current.get(name, 0) + weight
            chosen = max(weights, key=lambda item: self._current[item[0]])[0]
            self._current[chosen] -= total
        return chosen


class Router:
    def __init__(self, state: ServingState, service: str) -> None:
        self.state = state
        self._ingress_path = state.object_path("Ingress", service)
        self._stamp: tuple[tuple[int, int, int] | None, ...] | None = None
        self._start_routing(service)

    def _start_routing(self, service: str) -> None:
        """What every router keeps (its Service, the split, the routes, the pick, the counts), then a first look."""
        self.service = service
        self._lock = threading.Lock()
        self._refreshed_at = 0.0
        self.split: tuple[tuple[str, int], ...] = ((service, 1),)
        self.routes: dict[str, Route] = {service: Route({}, (), ())}
        self._pick = WeightedPick()
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self.refresh()

    @property
    def route(self) -> Route:
        """The route of this router's own Service (the stable one during a canary)."""
        return self.routes.get(self.service) or Route({}, (), ())

    def _current_stamp(
        self, split: tuple[tuple[str, int], ...] | None = None
    ) -> tuple[tuple[int, int, int] | None, ...]:
        """The Ingress's and the watched Services' file stats: a change means a new route."""
        split = self.split if split is None else split
        paths = [self._ingress_path, *(self.state.service_path(name) for name, _ in split)]
        if self.service not in (name for name, _ in split):
            paths.append(self.state.service_path(self.service))
        return tuple(_stat(path) for path in paths)

    def current(self) -> Route:
        if self._current_stamp() != self._stamp:
            self.refresh(only_if_changed=True)
        split = self.split
        chosen = split[0][0] if len(split) == 1 else self._pick.choose(split)
        route = self.routes.get(chosen) or Route({}, (), ())
        if not route.ready:
            # Nothing was ready at the last look, but a process may be now (a version brought back
            # for a rollback is switched to as soon as LocalServing sees it ready): look again
            # rather than answer 503 until the watcher's next round.
            self.refresh(max_age=RECHECK_SECONDS)
            route = self.routes.get(chosen) or route
        return route

    def _read_split(self) -> tuple[tuple[str, int], ...]:
        """The Ingress's weighted Services with a weight above 0; just this Service without one."""
        try:
            manifest = json.loads(self._ingress_path.read_text())
        except (OSError, ValueError):
            return ((self.service, 1),)
        weights = tuple((name, weight) for name, weight in weights_of_ingress(manifest).items() if weight > 0)
        return weights or ((self.service, 1),)

    def _build_route(self, service: str) -> Route:
        state = self.state.read_service(service)
        selector = dict(state["selector"]) if state else {}
        alive = []
        for deployment in self.state.all_deployments().values():
            labels = pod_labels(deployment["manifest"])
            if selector and selects(selector, labels):
                version = labels.get(LABEL_VERSION, "")
                alive += [Upstream(p.pod, p.port, version) for p in recorded_pods(deployment) if p.alive]
        ready = tuple(upstream for upstream in alive if ping(upstream.port, PING_TIMEOUT))
        previous = self.routes.get(service)
        if previous and previous.selector == selector and previous.ready == ready and previous.alive == tuple(alive):
            return previous  # keeps its round-robin turn
        return Route(selector, ready, tuple(alive))

    def refresh(self, *, only_if_changed: bool = False, max_age: float = 0.0) -> None:
        """Re-read the selector and the Deployments, probe the selected processes, swap the route.
        Skipped when only_if_changed and the Service file is as last read, or when the last
        refresh began less than max_age ago (another request thread refreshed while this one waited)."""
        with self._lock:
            stamp = self._current_stamp()
            if only_if_changed and stamp == self._stamp:
                return
            began = time.monotonic()
            if max_age and began - self._refreshed_at < max_age:
                return
            split = self._read_split()
            old_split = self.split
            if split != old_split:  # the Services to watch changed; the Ingress's stat stays the one read before
                stamp = (stamp[0], *self._current_stamp(split)[1:])
            services = {name for name, _ in split} | {self.service}
            previous = self.routes
            routes = {name: self._build_route(name) for name in sorted(services)}
            self._refreshed_at = began
            changed = split != old_split or any(previous.get(name) is not route for name, route in routes.items())
            self.routes = routes  # the routes first: a request that sees the new split finds its route
            self.split = split
            self._stamp = stamp
        if not changed:
            return
        for name, route in routes.items():
            ready_pods = ", ".join(upstream.pod for upstream in route.ready) or "none"
            share = dict(split).get(name, 0)
            print(
                f"{time.strftime('%H:%M:%S')} route {name} {route.selector} (weight {share}): "
                f"ready {ready_pods} of {len(route.alive)} live",
                file=sys.stderr,
                flush=True,
            )

    def watch(self) -> None:
        """Keep readiness and the upstream list fresh (the selector is also checked per request)."""
        while True:
            time.sleep(REFRESH_SECONDS)
            try:
                self.refresh()
            except Exception as exc:  # a half-written state must not stop the watcher
                print(f"router {self.service}: refresh failed: {exc!r}", file=sys.stderr, flush=True)

    def count(self, what: str) -> None:
        with self._counts_lock:
            self.counts[what] += 1

    def status(self) -> dict[str, Any]:
        route = self.route
        return {
            "service": self.service,
            "selector": route.selector,
            "upstreams": [upstream._asdict() for upstream in route.ready],
            "not_ready": [upstream._asdict() for upstream in route.alive if upstream not in route.ready],
            "split": [
                {"service": name, "weight": weight, "selector": self.routes[name].selector}
                for name, weight in self.split
                if name in self.routes
            ],
            "counts": self.counts_snapshot(),
        }

    def counts_snapshot(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self.counts)


class ConnectionPool:
    """Idle keep-alive connections per upstream port."""

    def __init__(self) -> None:
        self._idle: dict[int, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def take(self, port: int) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(port)
            return idle.pop() if idle else None

    def give(self, port: int, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(port, [])
            if len(idle) < MAX_IDLE_PER_UPSTREAM:
                idle.append(connection)
                return
        connection.close()

    def keep_only(self, ports: set[int]) -> None:
        """Close idle connections to processes no longer routed to (a version switched away or
        scaled down), so a long-lived router does not collect them."""
        with self._lock:
            gone = [port for port in self._idle if port not in ports]
            closing = [connection for port in gone for connection in self._idle.pop(port)]
        for connection in closing:
            connection.close()

    def attempts(self, upstreams: list[Upstream]) -> Iterator[tuple[Upstream, http.client.HTTPConnection]]:
        """For each upstream: an idle connection if there is one, then a fresh one."""
        for upstream in upstreams:
            idle = self.take(upstream.port)
            if idle is not None:
                yield upstream, idle
            yield upstream, http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=UPSTREAM_TIMEOUT)


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        self.router = router
        self.pool = ConnectionPool()
        super().__init__(address, ProxyHandler)


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        if self.path == STATUS_PATH:
            self._answer(200, json.dumps(self.server.router.status()).encode())
        else:
            self._proxy()

    def _proxy(self) -> None:
        router = self.server.router
        arrived = time.monotonic()
        try:
            body = self._read_body()
        except ValueError as exc:
            self._answer(400, json.dumps({"error": "bad_request", "message": str(exc)}).encode())
            return
        headers = {key: value for key, value in self.headers.items() if key.lower() not in _HOP_BY_HOP}
        headers["X-Forwarded-For"] = self.client_address[0]
        send_body = body if body or self.command in ("POST", "PUT", "PATCH") else None
        route = router.current()
        if self._forward(route, send_body, headers):
            return
        # No upstream took it: the route may be older than a process's restart (a new port) or its
        # readiness. Look again unless a look began after this request arrived (requests waiting
        # together share one), and try once more.
        router.refresh(max_age=time.monotonic() - arrived)
        route = router.current()
        if self._forward(route, send_body, headers):
            return
        router.count("no_upstream")
        message = f"no ready model server for selector {route.selector}"
        self._answer(503, json.dumps({"error": "no_ready_upstream", "message": message}).encode())

    def _forward(self, route: Route, send_body: bytes | None, headers: dict[str, str]) -> bool:
        """Send the request to the route's ready upstreams in turn, moving on from one that did not
        take it; False when none did (nothing was answered)."""
        router = self.server.router
        everything_alive = {upstream.port for each in router.routes.values() for upstream in each.alive}
        self.server.pool.keep_only(everything_alive)
        for upstream, connection in self.server.pool.attempts(route.order()):
            try:
                connection.request(self.command, self.path, body=send_body, headers=headers)
                response = connection.getresponse()
            except _NOT_ANSWERED as exc:
                connection.close()
                router.count(f"retried_after_{type(exc).__name__}")
                continue
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                router.count("upstream_errors")
                self._answer(504 if isinstance(exc, TimeoutError) else 502, _error("upstream_failed", exc))
                return True
            try:
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:  # the answer started: never retried
                connection.close()
                router.count("upstream_errors")
                self._answer(502, _error("upstream_failed", exc))
                return True
            if response.will_close:
                connection.close()
            else:
                self.server.pool.give(upstream.port, connection)
            router.count("forwarded")
            router.count(f"served_by_v{upstream.version}")
            self._relay(response, payload, upstream)
            return True
        return False

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _proxy

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ValueError("malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            raise ValueError(f"bad Content-Length {length!r}")
        return self.rfile.read(int(length))

    def _relay(self, response: http.client.HTTPResponse, payload: bytes, upstream: Upstream) -> None:
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(payload)))
        self.send_header("X-Mlcp-Pod", upstream.pod)
        if not response.getheader("X-Model-Version"):  # the model server says it itself
            self.send_header("X-Model-Version", upstream.version)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _error(reason: str, exc: BaseException) -> bytes:
    return json.dumps({"error": reason, "message": f"{type(exc).__name__}: {exc}"}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control.local.router")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    router = Router(ServingState(args.state_dir), args.service)
    server = ProxyServer((args.host, args.port), router)
    threading.Thread(target=router.watch, name="watch", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"router for Service {args.service} on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
