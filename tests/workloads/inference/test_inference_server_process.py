"""The real server process (`python -m workloads.inference.serve`) on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from control.local.processes import free_port
from tests.support.inference_artifact import Artifact
from tests.support.inference_http import Reply, ServerProcess, http_call

pytestmark = pytest.mark.slow

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def start_server(tmp_path: Path, artifact: Artifact) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = ServerProcess(
            {"MODEL_URI": str(artifact.folder), "MODEL_NAME": "iris", "MODEL_VERSION": "2", **env},
            tmp_path / f"server-{len(started)}.log",
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_serves_the_contract_over_http(start_server, artifact: Artifact) -> None:
    server = start_server(MODEL_SHA256=artifact.sha256)
    server.wait_ready()
    reply = http_call(server.port, "POST", "/invocations", json.dumps({"instances": ROWS}).encode(), JSON)
    assert reply.status == 200 and len(reply.json()["predictions"]) == 2
    bad = http_call(server.port, "POST", "/invocations", b"[[1,2,3,4]]", {"Content-Type": "text/plain"})
    assert bad.status == 415 and bad.json()["error"] == "unsupported_content_type"
    metrics = http_call(server.port, "GET", "/metrics").body.decode()
    assert 'mlcp_inference_requests_total{code="200",model="iris",version="2"} 1.0' in metrics
    assert 'mlcp_inference_model_loaded{model="iris",version="2"} 1.0' in metrics


def test_a_sha256_mismatch_keeps_ping_at_503_with_a_clear_log_line(start_server) -> None:
    server = start_server(MODEL_SHA256="0" * 64)
    server.wait_listening()
    deadline = time.monotonic() + 10
    while "MODEL NOT LOADED" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(5):
        assert http_call(server.port, "GET", "/ping").status == 503
        time.sleep(0.1)
    line = next(line for line in server.log().splitlines() if "MODEL NOT LOADED" in line)
    assert "sha256" in line and "0" * 64 in line
    assert server.process.poll() is None  # it stays up, unready, for the orchestrator to see


def test_the_admin_endpoint_does_not_exist_unless_enabled(start_server) -> None:
    admin_port = free_port()
    server = start_server(MLCP_ADMIN_PORT=str(admin_port))
    server.wait_ready()
    assert http_call(server.port, "POST", "/admin/fault", b'{"error_ratio": 1}', JSON).status == 404
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", admin_port), timeout=1):
        pass


def test_the_admin_endpoint_on_loopback_injects_faults(start_server) -> None:
    admin_port = free_port()
    server = start_server(MLCP_ENABLE_FAULT_INJECTION="1", MLCP_ADMIN_PORT=str(admin_port))
    server.wait_ready()
    assert http_call(server.port, "POST", "/admin/fault", b'{"error_ratio": 1}', JSON).status == 404
    assert http_call(admin_port, "POST", "/admin/fault", b'{"error_ratio": 1}', JSON).status == 200
    reply = http_call(server.port, "POST", "/invocations", json.dumps(ROWS).encode(), JSON)
    assert reply.status == 500 and reply.json()["error"] == "injected_fault"
    assert http_call(admin_port, "DELETE", "/admin/fault").status == 200
    assert http_call(server.port, "POST", "/invocations", json.dumps(ROWS).encode(), JSON).status == 200


def test_sigterm_drains_in_flight_requests_then_exits(start_server) -> None:
    admin_port = free_port()
    server = start_server(MLCP_ENABLE_FAULT_INJECTION="1", MLCP_ADMIN_PORT=str(admin_port))
    server.wait_ready()
    # A slow request (injected latency), in flight when SIGTERM arrives.
    assert http_call(admin_port, "POST", "/admin/fault", b'{"latency_ms": 2000}', JSON).status == 200
    results: list[Reply | BaseException] = []

    def slow_request() -> None:
        try:
            results.append(http_call(server.port, "POST", "/invocations", json.dumps(ROWS).encode(), JSON))
        except BaseException as exc:  # reported below
            results.append(exc)

    client = threading.Thread(target=slow_request)
    client.start()
    time.sleep(0.5)
    signalled = time.monotonic()
    server.terminate()
    time.sleep(0.5)
    # Draining: no new connections are accepted.
    with pytest.raises(OSError):
        http_call(server.port, "GET", "/ping", timeout=1)
    client.join(timeout=10)
    assert results and isinstance(results[0], Reply), results
    assert results[0].status == 200 and len(results[0].json()["predictions"]) == 2
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - signalled < 30
    assert "draining" in server.log()
