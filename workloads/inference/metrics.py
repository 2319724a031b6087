"""Prometheus metrics of the model server (names from docs/contracts.md, "Model server").

The registry is created by the app factory, never at import time, so two servers (or two tests)
in one process do not share series. Children are bound once per label set.

Per request, nothing is written to prometheus_client: the hot path appends its observations to
plain lists (and counts codes in a dict), and `flush` moves them into the series in one go, bucket
counts found by bisect as `observe` finds them, one `inc` per bucket that moved (prometheus_client's
child internals, pinned by the lock; a test checks the series equal `observe`'s value by value).
With several workers each series is an mmap'ed file and an observation cost ~17 µs of writes per
request (7 µs in one process); appending costs under 1 µs. `flush` runs before every collection
of this registry (a collector registered first does it, so /metrics is exact in one process)
and, in the data app, at most FLUSH_INTERVAL_S after a request starts or ends (so another
worker's /metrics is at most that much behind). The in-flight gauge is set at each flush. List
appends are atomic under the GIL, and `flush` removes only what it read, so predict threads
(MLCP_INFERENCE_THREADS) lose nothing.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

# Sub-millisecond to seconds: small models answer in well under 5 ms, the default buckets start there.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
STAGES = ("decode", "predict", "encode")  # predict: one observation per forward pass (a batch)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
PRE_CREATED_CODES = (200, 500, 503)
FLUSH_INTERVAL_S = 0.05  # how far behind another worker's /metrics may be (Prometheus scrapes every >= 1 s)


class _FlushFirst:
    """A collector that yields nothing: collecting it flushes the pending observations. Registered
    before the server's series, so a collection of the registry sees them flushed."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        self._flush()
        return ()


class _PendingHistogram:
    """Observations of one histogram child, kept until `flush` adds them to its buckets and sum
    (what `observe` would have done one by one: bucket i holds the values <= bound i). Counted in
    plain Python: a flush holds tens to a few hundred values, where numpy's fixed cost per call
    would be most of it."""

    def __init__(self, child: Any) -> None:
        self._child = child
        self._bounds = list(child._upper_bounds)  # the last one is +Inf
        self.values: list[float] = []

    def flush(self) -> None:
        values = self.values
        taken = len(values)
        if not taken:
            return
        observed = values[:taken]
        del values[:taken]  # what a predict thread appended meanwhile stays for the next flush
        bounds = self._bounds
        counts: dict[int, int] = {}
        for value in observed:
            index = bisect_left(bounds, value)
            counts[index] = counts.get(index, 0) + 1
        buckets = self._child._buckets
        for index, count in counts.items():
            buckets[index].inc(count)
        self._child._sum.inc(math.fsum(observed))


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        self.registry = registry
        registry.register(_FlushFirst(self.flush))  # first: a collection flushes, then reads
        self._labels = {"model": model, "version": version}
        self._requests = Counter(
            "mlcp_inference_requests",
            "Invocations answered, by HTTP status code.",
            ["model", "version", "code"],
            registry=registry,
        )
        self._duration = _PendingHistogram(
            Histogram(
                "mlcp_inference_request_duration_seconds",
                "Time to answer an invocation, from the request read to the response written.",
                ["model", "version"],
                buckets=REQUEST_BUCKETS,
                registry=registry,
            ).labels(**self._labels)
        )
        self._in_flight_gauge = Gauge(
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
        self._decode, self._predict, self._encode = (
            _PendingHistogram(stage.labels(stage=name, **self._labels)) for name in STAGES
        )
        self._batch_size = _PendingHistogram(
            Histogram(
                "mlcp_inference_batch_size",
                "Invocations answered by one forward pass of the model (micro-batching; 1: the request ran alone).",
                ["model", "version"],
                buckets=BATCH_BUCKETS,
                registry=registry,
            ).labels(**self._labels)
        )
        self._histograms = (self._duration, self._decode, self._predict, self._encode, self._batch_size)
        # The codes an alert or an analysis divides by exist from the start, at 0: a series born
        # with the first failure has no earlier sample, so rate() would only see the failures from
        # the second scrape on, and the error-ratio alert would go pending one scrape later.
        self._by_code: dict[int, Any] = {
            code: self._requests.labels(**self._labels, code=str(code)) for code in PRE_CREATED_CODES
        }
        self._codes: dict[int, int] = {}  # answered since the last flush
        self._by_class: list[Any] = []
        self._classes_seen: list[np.ndarray] = []  # predicted class indices since the last flush
        self.in_flight = 0  # invocations being answered now (the data app counts them)
        self._loaded.set(0)

    def model_loaded(self, classes: Sequence[Any]) -> None:
        self._by_class = [self._predictions.labels(**self._labels, **{"class": str(c)}) for c in classes]
        self._loaded.set(1)

    def model_unloaded(self) -> None:
        self._loaded.set(0)

    def request_done(self, code: int, seconds: float) -> None:
        codes = self._codes
        codes[code] = codes.get(code, 0) + 1
        self._duration.values.append(seconds)

    def stage_decode(self, seconds: float) -> None:
        self._decode.values.append(seconds)

    def forward_pass(self, requests: int, seconds: float) -> None:
        """One forward pass for `requests` invocations: the predict stage is timed per pass."""
        self._predict.values.append(seconds)
        self._batch_size.values.append(requests)

    def stage_encode(self, seconds: float) -> None:
        self._encode.values.append(seconds)

    def predictions(self, class_indices: np.ndarray) -> None:
        self._classes_seen.append(class_indices)

    def flush(self) -> None:
        """What was observed since the last flush, into the series (on the event loop's thread)."""
        codes, self._codes = self._codes, {}  # only the event loop's thread counts codes
        for code, count in codes.items():
            child = self._by_code.get(code)
            if child is None:
                child = self._by_code[code] = self._requests.labels(**self._labels, code=str(code))
            child.inc(count)
        for histogram in self._histograms:
            histogram.flush()
        self._flush_predictions()
        self._in_flight_gauge.set(self.in_flight)

    def _flush_predictions(self) -> None:
        seen = self._classes_seen
        taken = len(seen)
        if not taken:
            return
        batches = seen[:taken]
        del seen[:taken]
        by_class = self._by_class
        if not by_class:
            return
        counts = [0] * len(by_class)
        for indices in batches:
            if indices.size == 1:
                counts[int(indices[0])] += 1
            else:
                for index, count in enumerate(np.bincount(indices, minlength=len(counts)).tolist()):
                    counts[index] += count
        for index, count in enumerate(counts):
            if count:
                by_class[index].inc(count)
