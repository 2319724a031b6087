"""The preview-traffic load tester against a real HTTP server: bounded, counts statuses, exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from workloads.inference import loadtest

REPO = Path(__file__).resolve().parents[3]


class Target:
    """Answers POST /invocations: every third request 500, the rest 200; remembers what it got."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, str]] = []
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with target.lock:
                    target.bodies.append((body, self.headers.get("Content-Type", "")))
                    count = len(target.bodies)
                code = 500 if count % 3 == 0 else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/invocations"


@pytest.fixture
def target() -> Iterator[Target]:
    served = Target()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    path = tmp_path / "sample.json"
    path.write_text(json.dumps({"instances": [[0.1, 0.2], [0.3, 0.4]]}))
    return path


def test_it_sends_at_the_rate_for_the_duration_and_counts_each_status(target: Target, payload_file: Path) -> None:
    payload = loadtest.load_payload(str(payload_file))
    started = time.monotonic()
    tally = loadtest.run(target.url, payload, rate=20, duration=1.5)
    took = time.monotonic() - started
    assert 1.4 <= took < 4  # bounded: it stops at its duration
    summary = tally.summary()
    assert 20 <= summary["sent"] <= 32, summary  # ~30 at 20 req/s for 1.5 s
    assert set(summary["statuses"]) == {"200", "500"}
    assert summary["statuses"]["500"] == summary["sent"] // 3
    assert {body for body, _ in target.bodies} == {payload_file.read_bytes()}
    assert {kind for _, kind in target.bodies} == {"application/json"}


def test_an_unreachable_target_counts_as_status_0_and_still_ends() -> None:
    tally = loadtest.run("http://127.0.0.1:9/invocations", loadtest.Payload(b"{}", "application/json"),
                         rate=5, duration=0.5, timeout=0.5)  # fmt: skip
    assert set(tally.statuses) == {0} and tally.sent >= 1


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (-1, 1), (2000, 1), (5, 0)])
def test_bad_rate_or_duration_is_refused(rate: float, duration: float) -> None:
    with pytest.raises(loadtest.LoadTestError):
        loadtest.run("http://127.0.0.1:9/", loadtest.Payload(b"", "text/csv"), rate=rate, duration=duration)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "workloads.inference.loadtest", *args]


def test_the_command_prints_its_tally_and_exits_0_even_when_requests_fail(target: Target, payload_file: Path) -> None:
    done = subprocess.run(
        command("--url", target.url, "--rate", "10", "--duration", "1", "--payload-uri", str(payload_file),
                "--content-type", "text/csv"),
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["event"] == "done" and last["sent"] >= 5 and "500" in last["statuses"]
    assert {kind for _, kind in target.bodies} == {"text/csv"}


def test_sigterm_ends_it_early_with_its_tally(target: Target, payload_file: Path) -> None:
    process = subprocess.Popen(
        command("--url", target.url, "--rate", "10", "--duration", "600", "--payload-uri", str(payload_file)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["event"] == "started"
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert json.loads(out.strip().splitlines()[-1])["event"] == "done"


def test_a_payload_it_cannot_read_exits_2_with_the_reason(tmp_path: Path) -> None:
    done = subprocess.run(
        command("--url", "http://127.0.0.1:9/", "--duration", "1", "--payload-uri", str(tmp_path / "missing.json")),
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: cannot read the payload") and "missing.json" in done.stderr
