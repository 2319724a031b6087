"""Data plane: one invocation, protocol-agnostic — decode, predict, encode, with per-stage latency.

It knows nothing about HTTP: it takes bytes and header values, returns bytes, and raises the
server's errors (workloads/inference/errors.py) for the HTTP layer to translate. The three
stages are separate calls so that the HTTP layer can batch the middle one (batching.py);
`invoke` runs all three for one request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workloads.inference.handler import ModelHandler, Prediction
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

    def decode(self, model: LoadedModel, body: bytes, content_type: str) -> np.ndarray:
        """Request body -> rows that fit the model (400/415 otherwise)."""
        started = self._clock()
        rows = self._handler.default_input_fn(body, content_type)
        self._handler.check_rows(rows, model)
        self._metrics.stage_decode(self._clock() - started)
        return rows

    def predict(self, rows: np.ndarray, model: LoadedModel, requests: int = 1) -> Prediction:
        """One forward pass over `rows`, which `requests` invocations sent together."""
        started = self._clock()
        prediction = self._handler.default_predict_fn(rows, model)
        self._metrics.forward_pass(requests, self._clock() - started)
        return prediction

    def encode(self, prediction: Prediction, accept: str) -> InvocationResult:
        started = self._clock()
        payload, payload_type = self._handler.default_output_fn(prediction, accept)
        self._metrics.stage_encode(self._clock() - started)
        self._metrics.predictions(prediction.class_indices)
        return InvocationResult(body=payload, content_type=payload_type, rows=len(prediction.labels))

    def invoke(self, model: LoadedModel, body: bytes, content_type: str, accept: str) -> InvocationResult:
        return self.encode(self.predict(self.decode(model, body, content_type), model), accept)
