"""A bounded constant-rate load generator for the local endpoints (demo, tests, benchmarks)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass(frozen=True)
class Sample:
    at: float  # time.time() when the request was sent
    status: int  # HTTP status; 0 when no response came back
    latency: float  # seconds
    version: str  # the model version that answered ("" when unknown)


@dataclass
class LoadGenerator:
    """`rate` requests/s spread over `workers` threads to `url` until stopped or `max_seconds`."""

    url: str
    body: bytes
    rate: float = 20.0
    workers: int = 4
    max_seconds: float = 600.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_features(cls, url: str, features: int = 8, **kwargs: float) -> LoadGenerator:
        body = json.dumps({"instances": [[0.5] * features]}).encode()
        return cls(url=url.rstrip("/") + "/invocations", body=body, **kwargs)  # type: ignore[arg-type]

    def start(self) -> LoadGenerator:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.workers):
            thread = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        return list(self.samples)

    def _run(self, deadline: float) -> None:
        session = requests.Session()
        interval = self.workers / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent = time.time()
            start = time.perf_counter()
            try:
                response = session.post(
                    self.url, data=self.body, headers={"Content-Type": "application/json"}, timeout=10
                )
                sample = Sample(
                    sent, response.status_code, time.perf_counter() - start, response.headers.get("X-Model-Version", "")
                )
            except requests.RequestException:
                sample = Sample(sent, 0, time.perf_counter() - start, "")
            with self._lock:
                self.samples.append(sample)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def summarize(samples: list[Sample]) -> dict[str, float]:
    if not samples:
        return {"requests": 0, "failed": 0, "success_ratio": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    latencies = sorted(s.latency for s in samples)
    failed = sum(1 for s in samples if s.status != 200)
    return {
        "requests": len(samples),
        "failed": failed,
        "success_ratio": 1 - failed / len(samples),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }
