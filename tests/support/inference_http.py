"""Test helpers: an in-process ASGI caller, and the real server as a subprocess on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.local.processes import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def asgi_call(app: Any, method: str, path: str, *args: Any, **kwargs: Any) -> Reply:
    """One request through an ASGI app, the way uvicorn would deliver it (body in two chunks)."""
    return asyncio.run(asgi_request(app, method, path, *args, **kwargs))


async def asgi_request(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    server: tuple[str, int] = ("127.0.0.1", 8080),
) -> Reply:
    """asgi_call on the caller's event loop (several at once share the app's in-flight state)."""
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]] if body else [b""]
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": server,
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start["headers"]},
        body=payload,
    )


def samples(server: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an in-process server's /metrics page, by (name, sorted labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    page = asgi_call(server.data_app, "GET", "/metrics")
    assert page.status == 200 and page.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(page.body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    """The labels of a test server's series (model iris, version 7) plus `extra`, as `samples` keys them."""
    return tuple(sorted({"model": "iris", "version": "7", **extra}.items()))


def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


class ServerProcess:
    """`python -m workloads.inference.serve` on a free 127.0.0.1 port; stopped by its own PID."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLCP_", "MODEL_", "SAGEMAKER_"))},
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "MLCP_BIND_HOST": "127.0.0.1",
            "MLCP_MODEL_LOAD_ATTEMPTS": "1",
            "PYTHONPATH": str(REPO),
            **env,
        }
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workloads.inference.serve"],
            cwd=str(REPO),
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server not listening after {timeout} s:\n{self.log()}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_call(self.port, "GET", "/ping").status == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log()}")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
