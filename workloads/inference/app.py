"""HTTP endpoints (plain ASGI) and the app factory.

Data port (SAGEMAKER_BIND_TO_PORT, 8080):
  GET  /ping         200 once the model is loaded and verified, 503 before, after a failed load
                     and while draining (SIGTERM)
  POST /invocations  JSON, CSV or NPY rows in; {"predictions", "probabilities"} out
  GET  /metrics      Prometheus text format
  GET  /healthz      200 while the process serves HTTP (liveness; /ping is readiness)
Admin port (only with MLCP_ENABLE_FAULT_INJECTION=1, bound to 127.0.0.1):
  GET/POST/DELETE /admin/fault

Plain ASGI rather than a framework: four routes do not need one, and every microsecond of
routing is paid on each invocation. Errors are translated in one place (`_error_response`)
through the table in errors.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from workloads.inference.batching import MicroBatcher
from workloads.inference.dataplane import DataPlane
from workloads.inference.errors import (
    BadRequestBody,
    InjectedFault,
    MethodNotAllowed,
    ModelNotReady,
    PayloadTooLarge,
    RouteNotFound,
    TooManyRequests,
    http_status,
)
from workloads.inference.faults import Fault, FaultInjector
from workloads.inference.handler import ModelHandler
from workloads.inference.lifecycle import ModelSlot, Phase
from workloads.inference.metrics import FLUSH_INTERVAL_S, ServerMetrics
from workloads.inference.repository import ModelRepository, open_store
from workloads.inference.settings import ServerSettings
from workloads.inference.workers import WorkerRole

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

_JSON = b"application/json"


@dataclass
class InferenceServer:
    """What the factory builds; serve.py binds `data_app` and `admin_app` to their listeners."""

    settings: ServerSettings
    registry: CollectorRegistry
    metrics: ServerMetrics
    slot: ModelSlot
    faults: FaultInjector | None
    data_app: DataApp
    admin_app: AdminApp | None

    def start_draining(self) -> None:
        self.slot.start_draining()


def create_app(
    settings: ServerSettings,
    repository: ModelRepository | None = None,
    faults: FaultInjector | None = None,
    worker: WorkerRole | None = None,
) -> InferenceServer:
    """One server process; `worker` when it is one of several on the port (see workers.py)."""
    registry = CollectorRegistry(auto_describe=True)
    metrics = ServerMetrics(registry, settings.model_name, settings.model_version)
    repository = repository or ModelRepository(open_store(settings.model_uri), settings.model_sha256)
    on_ready_change = None if worker is None else worker.mark_ready
    slot = ModelSlot(repository, metrics, settings.model_load_attempts, settings.model_load_backoff_s, on_ready_change)
    if settings.fault_injection_enabled:
        faults = faults or FaultInjector(Fault(settings.initial_error_ratio, settings.initial_latency_ms))
    else:
        faults = None
    plane = DataPlane(ModelHandler(), metrics)
    batcher = MicroBatcher(plane.predict, settings.batch_max_rows, settings.batch_max_wait_s)
    exposition = registry
    if settings.metrics_dir is not None:  # several workers: /metrics reports all of them
        exposition = CollectorRegistry()
        MultiProcessCollector(exposition, path=settings.metrics_dir)
    peers_ready = None if worker is None else worker.board.all_ready
    data_app = DataApp(settings, slot, plane, metrics, faults, exposition, peers_ready, batcher)
    admin_app = AdminApp(faults) if faults is not None else None
    return InferenceServer(settings, registry, metrics, slot, faults, data_app, admin_app)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away before sending its body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes = _JSON, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *extra]
    if status in (429, 503):
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(error: BaseException, status: int) -> bytes:
    reason = getattr(error, "reason", "internal_error")
    message = str(error) if status < 500 or reason != "internal_error" else "internal server error"
    return json.dumps({"error": reason, "message": message}).encode()


async def _error_response(send: Send, error: BaseException, extra: tuple[tuple[bytes, bytes], ...] = ()) -> int:
    status = http_status(error)
    if status == 500 and getattr(error, "reason", "internal_error") == "internal_error":
        log.error("unhandled error while answering a request", exc_info=error)
    await _respond(send, status, _error_body(error, status), extra=extra)
    return status


def _check_method(scope: Scope, *allowed: str) -> None:
    if scope["method"] not in allowed:
        raise MethodNotAllowed(f"{scope['method']} is not allowed on {scope['path']}; use {', '.join(allowed)}")


class DataApp:
    def __init__(
        self,
        settings: ServerSettings,
        slot: ModelSlot,
        plane: DataPlane,
        metrics: ServerMetrics,
        faults: FaultInjector | None,
        exposition: CollectorRegistry | None = None,
        peers_ready: Callable[[], bool] | None = None,
        batcher: MicroBatcher | None = None,
    ) -> None:
        self._settings = settings
        self._batcher = batcher
        # Requests being handled, for the batcher; serve.py points it at uvicorn's request tasks,
        # which also counts those whose task has not started yet.
        self.requests_in_progress: Callable[[], int] = lambda: self._metrics.in_flight
        self._exposition = exposition or metrics.registry
        self._peers_ready = peers_ready or (lambda: True)
        self._slot = slot
        self._plane = plane
        self._metrics = metrics
        self._faults = faults
        self._flush_timer: asyncio.TimerHandle | None = None
        # Every invocation answer says which model version gave it, errors included.
        self._version_header = ((b"x-model-version", settings.model_version.encode()),)
        self._executor = (
            ThreadPoolExecutor(settings.inference_threads, thread_name_prefix="predict")
            if settings.inference_threads > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == "/invocations":
                await self._invocations(scope, receive, send)
            elif path == "/ping":
                await self._guard(self._ping, scope, send)
            elif path == "/metrics":
                await self._guard(self._metrics_page, scope, send)
            elif path == "/healthz":
                await self._guard(self._healthz, scope, send)
            else:
                await _error_response(send, RouteNotFound(f"no route {path}"))
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _guard(self, endpoint: Callable[[Scope, Send], Awaitable[None]], scope: Scope, send: Send) -> None:
        try:
            await endpoint(scope, send)
        except Exception as exc:
            await _error_response(send, exc)

    async def _ping(self, scope: Scope, send: Send) -> None:
        _check_method(scope, "GET")
        slot = self._slot
        peers_ready = self._peers_ready()
        if slot.phase is Phase.READY and peers_ready:
            await _respond(send, 200, b'{"status":"ready"}')
            return
        body: dict[str, Any] = {"status": slot.phase.value if slot.phase is not Phase.READY else "waiting_for_workers"}
        if slot.failure:
            body["reason"] = slot.failure
        await _respond(send, 503, json.dumps(body).encode())

    async def _healthz(self, scope: Scope, send: Send) -> None:
        _check_method(scope, "GET")
        await _respond(send, 200, b'{"status":"alive"}')

    async def _metrics_page(self, scope: Scope, send: Send) -> None:
        _check_method(scope, "GET")
        self._metrics.flush()  # several workers: the page reads the files, not this registry
        await _respond(send, 200, generate_latest(self._exposition), CONTENT_TYPE_LATEST.encode())

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self._metrics
        started = time.perf_counter()
        metrics.in_flight += 1  # one event loop: a plain counter, into the gauge at each flush
        if self._flush_timer is None:
            self._schedule_flush()
        status = 500
        try:
            try:
                limit = self._settings.max_concurrent_invocations
                if limit and metrics.in_flight > limit:
                    raise TooManyRequests(f"{limit} invocations are already in flight; retry after 1 s")
                _check_method(scope, "POST")
                body = await _read_body(receive, self._settings.max_body_bytes)
                model = self._slot.model
                if model is None or self._slot.phase is Phase.FAILED:
                    raise ModelNotReady(f"the model is not loaded ({self._slot.phase.value})")
                if self._faults is not None:
                    delay, fail = self._faults.draw()
                    if delay:
                        await asyncio.sleep(delay)
                    if fail:
                        raise InjectedFault("injected fault (fault injection is on)")
                content_type = _header(scope, b"content-type")
                accept = _header(scope, b"accept")
                if self._batcher is not None and self._executor is None:
                    plane = self._plane
                    rows = plane.decode(model, body, content_type)
                    prediction = await self._batcher.predict(model, rows, self.requests_in_progress())
                    result = plane.encode(prediction, accept)
                elif self._executor is None:
                    result = self._plane.invoke(model, body, content_type, accept)
                else:
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(
                        self._executor, self._plane.invoke, model, body, content_type, accept
                    )
            except ConnectionAbortedError:
                status = 499  # nginx's "client closed request": counted, nothing to answer
                return
            except Exception as exc:
                status = await _error_response(send, exc, self._version_header)
                return
            status = 200
            await _respond(send, 200, result.body, result.content_type.encode(), self._version_header)
        finally:
            metrics.in_flight -= 1
            metrics.request_done(status, time.perf_counter() - started)
            if self._flush_timer is None:
                self._schedule_flush()

    def _schedule_flush(self) -> None:
        """The metrics reach prometheus_client (and, with several workers, their files) within
        FLUSH_INTERVAL_S of a request's start or end, not on every request (metrics.py)."""
        self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        self._metrics.flush()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._slot.start_loading()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._slot.start_draining()
                if self._flush_timer is not None:
                    self._flush_timer.cancel()
                    self._flush_timer = None
                self._metrics.flush()  # what the last requests observed, before the process goes
                if self._executor is not None:
                    self._executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


class AdminApp:
    """Fault injection. Serves only /admin/fault, only on the loopback admin listener."""

    def __init__(self, faults: FaultInjector) -> None:
        self._faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            if scope["path"] != "/admin/fault":
                raise RouteNotFound(f"no route {scope['path']}")
            method = scope["method"]
            _check_method(scope, "GET", "POST", "DELETE")
            if method == "POST":
                raw = await _read_body(receive, 64 * 1024)
                try:
                    changes = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise BadRequestBody(f"the body is not JSON: {exc}") from exc
                if not isinstance(changes, dict):
                    raise BadRequestBody('send a JSON object, e.g. {"error_ratio": 0.5, "latency_ms": 0}')
                fault = self._faults.update(changes)
                log.warning("fault injection set: %s", fault.as_dict())
            elif method == "DELETE":
                fault = self._faults.reset()
                log.warning("fault injection cleared")
            else:
                fault = self._faults.fault
            await _respond(send, 200, json.dumps(fault.as_dict()).encode())
        except ConnectionAbortedError:
            return
        except Exception as exc:
            await _error_response(send, exc)


class ListenerRouter:
    """One uvicorn server, two listeners: requests that arrived on the admin socket go to the admin
    app, all others to the data app. Lifespan events go to the data app."""

    def __init__(self, data_app: DataApp, admin_app: AdminApp | None, admin_port: int | None) -> None:
        self._data_app = data_app
        self._admin_app = admin_app
        self._admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._admin_app is not None and scope["type"] == "http":
            server = scope.get("server")
            if server is not None and server[1] == self._admin_port:
                await self._admin_app(scope, receive, send)
                return
        await self._data_app(scope, receive, send)
