"""Several server processes on one port (MLCP_WORKERS): readiness, metrics, the 429 share, drain."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.inference_artifact import Artifact
from tests.support.inference_http import ServerProcess, asgi_call, http_call
from workloads.inference.app import create_app
from workloads.inference.metrics import FLUSH_INTERVAL_S
from workloads.inference.settings import ServerSettings
from workloads.inference.workers import ReadinessBoard, WorkerRole, worker_share

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
JSON = {"Content-Type": "application/json"}


def test_ping_is_ready_only_when_every_worker_is(tmp_path: Path, artifact: Artifact) -> None:
    board = ReadinessBoard.create(tmp_path / "ready", 2)
    settings = ServerSettings(model_uri=str(artifact.folder), model_load_attempts=1, workers=2)
    server = create_app(settings, worker=WorkerRole(0, board))
    server.slot.start_loading()
    assert server.slot.wait_settled(30)
    waiting = asgi_call(server.data_app, "GET", "/ping")
    assert waiting.status == 503 and waiting.json()["status"] == "waiting_for_workers"
    board.mark(1, True)  # the other worker has loaded its model
    assert asgi_call(server.data_app, "GET", "/ping").status == 200
    board.mark(1, False)  # ... and is draining
    assert asgi_call(server.data_app, "GET", "/ping").status == 503
    board.mark(1, True)
    server.start_draining()  # this one drains: every worker's /ping says so
    assert not board.all_ready()
    board.close()


@pytest.mark.parametrize(("limit", "workers", "share"), [(100, 2, 50), (5, 2, 3), (1, 4, 1), (0, 3, 0)])
def test_each_worker_takes_its_share_of_the_in_flight_limit(limit: int, workers: int, share: int) -> None:
    assert worker_share(limit, workers) == share


@pytest.fixture
def two_workers(tmp_path: Path, artifact: Artifact):
    server = ServerProcess(
        {"MODEL_URI": str(artifact.folder), "MODEL_SHA256": artifact.sha256, "MODEL_VERSION": "3", "MLCP_WORKERS": "2"},
        tmp_path / "server.log",
    )
    yield server
    server.stop()


@pytest.mark.slow
def test_two_workers_serve_one_port_and_report_their_metrics_together(two_workers: ServerProcess) -> None:
    two_workers.wait_ready()
    workers = psutil.Process(two_workers.process.pid).children()
    assert len(workers) == 2

    # A new connection each: the kernel spreads them over both workers (all 40 on one: p = 2**-39).
    for _ in range(40):
        reply = http_call(two_workers.port, "POST", "/invocations", json.dumps(ROWS).encode(), JSON)
        assert reply.status == 200 and reply.headers["x-model-version"] == "3"
    # The worker that answers /metrics flushes its own figures; the other's reach its files within
    # FLUSH_INTERVAL_S of its last request (metrics.py): read the page after that.
    time.sleep(FLUSH_INTERVAL_S * 4)
    page = http_call(two_workers.port, "GET", "/metrics").body.decode()
    samples = [sample for family in text_string_to_metric_families(page) for sample in family.samples]

    def total(name: str) -> float:
        return sum(sample.value for sample in samples if sample.name == name)

    assert total("mlcp_inference_requests_total") == 40
    assert total("mlcp_inference_predictions_total") == 80  # two rows each, over all classes
    assert total("mlcp_inference_request_duration_seconds_count") == 40
    assert total("mlcp_inference_model_loaded") == 1
    assert total("mlcp_inference_in_flight_requests") == 0


@pytest.mark.slow
def test_sigterm_drains_every_worker_and_the_request_in_flight(two_workers: ServerProcess) -> None:
    two_workers.wait_ready()
    body = json.dumps(ROWS).encode()
    client = socket.create_connection(("127.0.0.1", two_workers.port), timeout=10)
    head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    client.sendall(head.encode() + b"\r\n" + body[:10])  # in flight: half its body sent
    time.sleep(0.3)
    two_workers.terminate()
    time.sleep(1.0)
    with pytest.raises(OSError):  # draining: no new connections
        http_call(two_workers.port, "GET", "/ping", timeout=1)
    client.sendall(body[10:])
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"]]}"):
        chunk = client.recv(65536)
        if not chunk:
            break
        answer += chunk
    client.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert two_workers.process.wait(timeout=30) == 0
    assert not list(psutil.Process().children(recursive=True)) or all(
        not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in psutil.Process().children(recursive=True)
    )
