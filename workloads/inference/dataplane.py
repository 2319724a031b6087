"""Data plane: one invocation, protocol-agnostic — decode, predict, encode, with per-stage latency.

It knows nothing about HTTP: it takes bytes and header values, returns bytes, and raises the
server's errors (workloads/inference/errors.py) for the HTTP layer to translate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from workloads.inference.handler import ModelHandler
from workloads.inference.metrics import ServerMetrics
from workloads.inference.repository import LoadedModel


@dataclass(frozen=True)
class InvocationResult:
    body: bytes
    content_type: str
    rows: int


class DataPlane:
    def __init__(
        self,
        handler: ModelHandler,
        metrics: ServerMetrics,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._handler = handler
        self._metrics = metrics
        self._clock = clock

    def invoke(self, model: LoadedModel, body: bytes, content_type: str, accept: str) -> InvocationResult:
        clock = self._clock
        started = clock()
        rows = self._handler.default_input_fn(body, content_type)
        decoded = clock()
        prediction = self._handler.default_predict_fn(rows, model)
        predicted = clock()
        payload, payload_type = self._handler.default_output_fn(prediction, accept)
        encoded = clock()
        self._metrics.stages(decoded - started, predicted - decoded, encoded - predicted)
        self._metrics.predictions(prediction.class_indices)
        return InvocationResult(body=payload, content_type=payload_type, rows=int(rows.shape[0]))
