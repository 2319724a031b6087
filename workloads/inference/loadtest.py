"""A small, bounded load tester: sends one sample request at a constant rate for a fixed time.

The rollout runs it as a Job against the preview Service while a new version is analysed, so the
analysis has data even when no outside traffic reaches the preview (Flagger's load tester plays
this part for Flagger). The same command runs on EKS (inside the inference image) and here:

    python -m workloads.inference.loadtest --url http://churn-api-preview.ml-serving.svc:80/invocations \\
        --rate 5 --duration 600 --payload-uri s3://artifacts/models/churn/runs/r1/sample.json

It stops at its duration (or on SIGTERM), prints one JSON line with the count of each HTTP status
(0 for no response) and exits 0: failed requests are what the analysis measures, not a failure of
the load test. It exits 2 only when its arguments or the payload are unusable.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
MAX_RATE = 1000.0
MAX_WORKERS = 32
DEFAULT_CONTENT_TYPE = "application/json"


class LoadTestError(Exception):
    """Unusable arguments or payload."""


@dataclass(frozen=True)
class Payload:
    body: bytes
    content_type: str


@dataclass
class Tally:
    """What was sent and what came back, safe to update from several threads."""

    statuses: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sent": sum(self.statuses.values()),
                "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            }


def load_payload(uri: str, content_type: str = "") -> Payload:
    """The sample request from s3://bucket/key or a local path; its content type from the object
    (S3), the flag, or JSON by default."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise LoadTestError(f"payload URI {uri!r} must be s3://bucket/key")
        import boto3  # only here: a local payload needs no AWS client

        try:
            obj = boto3.client("s3").get_object(Bucket=bucket, Key=key)
            body = obj["Body"].read()
        except Exception as exc:  # the reason must reach the Job's log as one line
            raise LoadTestError(f"cannot read the payload {uri}: {exc}") from exc
        stored = str(obj.get("ContentType") or "")
        kind = content_type or (stored if stored and stored != "binary/octet-stream" else DEFAULT_CONTENT_TYPE)
        return Payload(body, kind)
    path = Path(uri.removeprefix("file://"))
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise LoadTestError(f"cannot read the payload {uri}: {exc.strerror or exc}") from exc
    return Payload(body, content_type or DEFAULT_CONTENT_TYPE)


def send(url: str, payload: Payload, timeout: float) -> int:
    """POST the payload once; the HTTP status, or 0 when no response came back."""
    request = urllib.request.Request(
        url, data=payload.body, method="POST", headers={"Content-Type": payload.content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)
    except (OSError, ValueError):
        return 0


def run(
    url: str,
    payload: Payload,
    *,
    rate: float,
    duration: float,
    stop: threading.Event | None = None,
    timeout: float = 10.0,
    sender: Callable[[str, Payload, float], int] = send,
) -> Tally:
    """Send `rate` requests/s for `duration` seconds (or until `stop` is set), spread over a few
    threads so one slow answer does not hold up the rest; returns the tally."""
    if not 0 < rate <= MAX_RATE:
        raise LoadTestError(f"rate must be between 0 and {MAX_RATE:g} requests per second; got {rate:g}")
    if duration <= 0:
        raise LoadTestError(f"duration must be a positive number of seconds; got {duration:g}")
    stop = stop or threading.Event()
    tally = Tally()
    workers = max(1, min(MAX_WORKERS, int(rate)))
    interval = workers / rate
    started = time.monotonic()
    deadline = started + duration

    def worker(index: int) -> None:
        next_at = started + index * interval / workers
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            if time.monotonic() >= deadline:
                return
            tally.add(sender(url, payload, timeout))
            next_at += interval

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    stop.wait(max(0.0, deadline - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(timeout + 1)
    return tally


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workloads.inference.loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="where to POST, e.g. http://svc:80/invocations")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    parser.add_argument("--duration", type=float, required=True, help="seconds to run")
    parser.add_argument("--payload-uri", required=True, help="s3://bucket/key or a local path")
    parser.add_argument("--content-type", default="", help="default: the S3 object's, else application/json")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # deleted by the rollout: finish cleanly
    try:
        if not args.url.startswith(("http://", "https://")):
            raise LoadTestError(f"url must be http(s)://...; got {args.url!r}")
        payload = load_payload(args.payload_uri, args.content_type)
        print(json.dumps({"event": "started", "url": args.url, "rate": args.rate, "duration": args.duration}),
              flush=True)  # fmt: skip
        tally = run(args.url, payload, rate=args.rate, duration=args.duration, stop=stop, timeout=args.timeout)
    except LoadTestError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    print(json.dumps({"event": "done", **tally.summary()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
