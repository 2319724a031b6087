"""The local scheduler: plays EventBridge's schedule rules for the embedded runtime.

Each scheduled function is invoked through the embedded AWS's Lambda (so through the same handler
the rule invokes in AWS) with EventBridge's "Scheduled Event" payload, every `every_seconds`: the
local interval is a named parameter, shorter than AWS's rate, as the rule windows are.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

Invoke = Callable[[str, dict[str, Any]], Any]


def scheduled_event(rule_arn: str, region: str, account: str, now: datetime) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class LocalScheduler:
    """Invokes `functions` (names) every `every_seconds` through `invoke(name, event)`, one thread."""

    def __init__(
        self, functions: Sequence[str], invoke: Invoke, *, every_seconds: float, region: str, account: str, prefix: str
    ) -> None:
        self.functions = tuple(functions)
        self.every_seconds = every_seconds
        self._invoke = invoke
        self._region, self._account, self._prefix = region, account, prefix
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # ticks completed

    def start(self) -> LocalScheduler:
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def tick(self) -> None:
        """Invoke every scheduled function once (what the rules do at each rate)."""
        for name in self.functions:
            rule = f"arn:aws:events:{self._region}:{self._account}:rule/{self._prefix}-{name}"
            try:
                self._invoke(name, scheduled_event(rule, self._region, self._account, datetime.now(UTC)))
            except Exception:  # a failed run is logged and retried at the next tick, as EventBridge would
                log.exception("scheduled function %s failed", name)
        self.runs += 1

    def _run(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.tick()
