"""The HTTP side: a threaded server on 127.0.0.1 that the `kubernetes` client talks to, a log of
every request (method, path, bytes each way, answer) and faults a test can inject."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.kube_apiserver.api import KubeApi, Response, Watch, status_body
from tests.support.kube_apiserver.auth import Identities, Rbac
from tests.support.kube_apiserver.platform import chart_documents, terraform_access_entries

CLUSTER_NAME = "mlcp-ci"


@dataclass
class Fault:
    """Answer `times` requests matching method and path fragment with `status` (after `delay` s).

    With `status` 0 the request is answered by the API as usual, after `action` ran: a concurrent
    writer, say, that changes the object between the client's read and its write."""

    method: str
    path_contains: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1
    action: Callable[[], None] | None = None


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    status: int
    bytes_in: int
    bytes_out: int
    token_tail: str  # the last characters of the bearer token: which token the client sent


class KubeApiServer:
    """A checking Kubernetes API server for one EKS cluster, seeded with the chart's namespaces."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.faults: list[Fault] = []
        self.requests: list[Logged] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # ends open watches
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # -- test controls ---------------------------------------------------------------------------

    def fail(self, method: str, path_contains: str, status: int, **kwargs: Any) -> Fault:
        fault = Fault(method, path_contains, status, **kwargs)
        self.faults.append(fault)
        return fault

    def writes(self, method: str | None = None) -> list[Logged]:
        wanted = (method,) if method else ("POST", "PUT", "PATCH", "DELETE")
        return [r for r in self.requests if r.method in wanted]

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock (token expiry) forward."""
        previous = self.api.now
        self.api.now = lambda: previous() + timedelta(seconds=seconds)

    # -- HTTP ------------------------------------------------------------------------------------

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times and fault.method == method and fault.path_contains in path:
                    fault.times -= 1
                    return fault
        return None

    def respond(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        path, _, raw_query = raw_path.partition("?")
        query = dict(urllib.parse.parse_qsl(raw_query))
        fault = self._fault_for(method, path)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.action is not None:
                fault.action()
        if fault is not None and fault.status:
            response = Response(fault.status, fault.body if fault.body is not None else "", dict(fault.headers))
        else:
            response = self.api.handle(method, path, query, headers, body)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
        out = "" if isinstance(response.body, Watch) else response.body
        out = out if isinstance(out, str) else json.dumps(out)
        self.requests.append(
            Logged(
                method,
                path,
                query,
                headers.get("content-type", ""),
                parsed,
                response.status,
                len(body),
                len(out),
                headers.get("authorization", "")[-12:],
            )
        )
        return response

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                response = server.respond(self.command, self.path, headers, body)
                if isinstance(response.body, Watch):
                    self._stream(response.body)
                    return
                text = isinstance(response.body, str)
                data = response.body.encode() if text else json.dumps(response.body).encode()
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def _stream(self, watch: Watch) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for event in watch.events(server.stopping):
                        line = json.dumps(event).encode() + b"\n"
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def start(self) -> KubeApiServer:
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._http.shutdown()
        self._http.server_close()


def new_api(identities: Identities | None = None, *, cluster_name: str = CLUSTER_NAME) -> KubeApi:
    """An API for the EKS cluster Terraform builds: its access entries, the chart's RBAC and namespaces."""
    documents = chart_documents()
    api = KubeApi(
        cluster_name=cluster_name,
        identities=identities or Identities(),
        access_entries=terraform_access_entries(),
        rbac=Rbac(documents),
        now=lambda: datetime.now(UTC),
    )
    for doc in documents:
        if doc.get("kind") == "Namespace":
            api.seed(doc)
    return api


@contextmanager
def running(identities: Identities | None = None, *, cluster_name: str = CLUSTER_NAME) -> Iterator[KubeApiServer]:
    server = KubeApiServer(new_api(identities, cluster_name=cluster_name)).start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["Fault", "KubeApiServer", "Logged", "new_api", "running", "status_body"]
