"""The local stand-in for API Gateway: Chalice's local server behind the stage's throttle.

In AWS the stage throttles every route with a token bucket (terraform/modules/functions/api.tf:
`throttling_rate_limit`, `throttling_burst_limit`) and answers 429 before the Lambda runs; here a
token bucket with the same figures sits in front of the same app, so a client sees the same
answer: 429, a JSON error, `Retry-After`. A throttled request never reaches a handler.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer

from control.errors import TooManyRequests

# The stage's throttling in terraform/modules/functions/api.tf (a contract test keeps them equal).
RATE_PER_SECOND = 50.0
BURST = 100


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; each request takes one or is refused."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate}/{burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one will be there."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class ThrottledRequestHandler(ChaliceRequestHandler):
    bucket: TokenBucket  # set per server by create_api_server

    def _generic_handle(self) -> None:
        wait = self.bucket.take()
        if wait:
            self._refuse(wait)
            return
        super()._generic_handle()

    def _refuse(self, wait: float) -> None:
        # The body is never read (however large it claims to be): the connection closes after
        # the answer, and the client's retry opens a new one.
        self.close_connection = True
        error = TooManyRequests(f"the API allows {self.bucket.rate:g} requests/s (bursts of {self.bucket.burst})")
        retry_after = str(max(1, math.ceil(wait)))
        headers = {"Content-Type": "application/json", "Retry-After": retry_after, "Connection": "close"}
        self._send_http_response(error.http_status, headers, json.dumps(error.to_dict()))

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


def create_api_server(
    app: Any, host: str, port: int, *, rate: float = RATE_PER_SECOND, burst: int = BURST
) -> LocalDevServer:
    """Chalice's local server for `app`, throttled like the API Gateway stage."""
    handler = type("StageHandler", (ThrottledRequestHandler,), {"bucket": TokenBucket(rate, burst)})
    return LocalDevServer(app, Config.create(), host, port, handler_cls=handler)
