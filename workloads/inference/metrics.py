"""Prometheus metrics of the model server (names from docs/contracts.md, "Model server").

The registry is created by the app factory, never at import time, so two servers (or two tests)
in one process do not share series. Children are bound once per label set: the hot path does
no label lookups beyond a dict hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Sub-millisecond to seconds: small models answer in well under 5 ms, the default buckets start there.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
STAGES = ("decode", "predict", "encode")  # predict: one observation per forward pass (a batch)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
PRE_CREATED_CODES = (200, 500, 503)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        self.registry = registry
        self._labels = {"model": model, "version": version}
        self._requests = Counter(
            "mlcp_inference_requests",
            "Invocations answered, by HTTP status code.",
            ["model", "version", "code"],
            registry=registry,
        )
        self._duration = Histogram(
            "mlcp_inference_request_duration_seconds",
            "Time to answer an invocation, from the request read to the response written.",
            ["model", "version"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        ).labels(**self._labels)
        self.in_flight = Gauge(
            "mlcp_inference_in_flight_requests",
            "Invocations being answered now.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="livesum",  # several workers: their sum
        ).labels(**self._labels)
        self._loaded = Gauge(
            "mlcp_inference_model_loaded",
            "1 once the model is loaded and verified (the server answers /ping with 200), else 0.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="livemin",  # several workers: 1 once every one has loaded it
        ).labels(**self._labels)
        self._predictions = Counter(
            "mlcp_inference_predictions",
            "Predicted classes, one per row: the prediction distribution, for drift.",
            ["model", "version", "class"],
            registry=registry,
        )
        stage = Histogram(
            "mlcp_inference_stage_duration_seconds",
            "Time spent in each stage of an invocation: decode, predict, encode.",
            ["model", "version", "stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self._stage = [stage.labels(stage=name, **self._labels) for name in STAGES]
        self._batch_size = Histogram(
            "mlcp_inference_batch_size",
            "Invocations answered by one forward pass of the model (micro-batching; 1: the request ran alone).",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        ).labels(**self._labels)
        # The codes an alert or an analysis divides by exist from the start, at 0: a series born
        # with the first failure has no earlier sample, so rate() would only see the failures from
        # the second scrape on, and the error-ratio alert would go pending one scrape later.
        self._by_code: dict[int, Any] = {
            code: self._requests.labels(**self._labels, code=str(code)) for code in PRE_CREATED_CODES
        }
        self._by_class: list[Any] = []
        self._loaded.set(0)

    def model_loaded(self, classes: Sequence[Any]) -> None:
        self._by_class = [self._predictions.labels(**self._labels, **{"class": str(c)}) for c in classes]
        self._loaded.set(1)

    def model_unloaded(self) -> None:
        self._loaded.set(0)

    def request_done(self, code: int, seconds: float) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self._requests.labels(**self._labels, code=str(code))
        child.inc()
        self._duration.observe(seconds)

    def stage_decode(self, seconds: float) -> None:
        self._stage[0].observe(seconds)

    def forward_pass(self, requests: int, seconds: float) -> None:
        """One forward pass for `requests` invocations: the predict stage is timed per pass."""
        self._stage[1].observe(seconds)
        self._batch_size.observe(requests)

    def stage_encode(self, seconds: float) -> None:
        self._stage[2].observe(seconds)

    def predictions(self, class_indices: np.ndarray) -> None:
        if not self._by_class:
            return
        if class_indices.size == 1:
            self._by_class[int(class_indices[0])].inc()
            return
        counts = np.bincount(class_indices, minlength=len(self._by_class))
        for index in np.flatnonzero(counts).tolist():
            self._by_class[index].inc(int(counts[index]))
