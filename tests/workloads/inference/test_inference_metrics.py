"""The model server's metrics: observations kept per request and flushed in one go read exactly as
prometheus_client's own observe/inc would have written them."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from workloads.inference.metrics import REQUEST_BUCKETS, STAGE_BUCKETS, ServerMetrics


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (
            sample.name,
            tuple(sorted((k, v) for k, v in sample.labels.items() if k in ("le", "code", "class", "stage"))),
        ): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith(name)
    }


def test_a_flushed_duration_histogram_equals_one_observed_value_by_value() -> None:
    # Values on, just above and far beyond the bounds: `le` is inclusive, the last bucket is +Inf.
    values = [0.0, *REQUEST_BUCKETS, *(b * 1.0001 for b in REQUEST_BUCKETS), 99.0, 0.0003]
    flushed = CollectorRegistry()
    metrics = ServerMetrics(flushed, "m", "1")
    for value in values:
        metrics.request_done(200, value)
    reference = CollectorRegistry()
    direct = Histogram(
        "mlcp_inference_request_duration_seconds",
        "x",
        ["model", "version"],
        buckets=REQUEST_BUCKETS,
        registry=reference,
    ).labels(model="m", version="1")
    for value in values:
        direct.observe(value)
    name = "mlcp_inference_request_duration_seconds"
    got, want = _samples(flushed, name), _samples(reference, name)
    assert {k: v for k, v in got.items() if not k[0].endswith("_created")} == pytest.approx(
        {k: v for k, v in want.items() if not k[0].endswith("_created")}
    )
    assert _samples(flushed, "mlcp_inference_requests_total")[
        ("mlcp_inference_requests_total", (("code", "200"),))
    ] == len(values)


def test_stages_codes_classes_and_in_flight_reach_the_registry_at_collection() -> None:
    registry = CollectorRegistry()
    metrics = ServerMetrics(registry, "m", "1")
    metrics.model_loaded(["a", "b", "c"])
    metrics.stage_decode(STAGE_BUCKETS[0])
    metrics.forward_pass(3, 0.002)
    metrics.stage_encode(5.0)
    metrics.predictions(np.array([2, 0, 2]))
    metrics.request_done(415, 0.001)
    metrics.in_flight = 2
    found = _samples(registry, "mlcp_inference")
    assert found[("mlcp_inference_predictions_total", (("class", "c"),))] == 2
    assert found[("mlcp_inference_predictions_total", (("class", "a"),))] == 1
    assert found[("mlcp_inference_predictions_total", (("class", "b"),))] == 0
    assert found[("mlcp_inference_requests_total", (("code", "415"),))] == 1
    assert found[("mlcp_inference_in_flight_requests", ())] == 2
    assert found[("mlcp_inference_stage_duration_seconds_bucket", (("le", "0.0001"), ("stage", "decode")))] == 1
    assert found[("mlcp_inference_stage_duration_seconds_bucket", (("le", "1.0"), ("stage", "encode")))] == 0
    assert found[("mlcp_inference_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", "encode")))] == 1
    assert found[("mlcp_inference_batch_size_sum", ())] == 3
    # A second collection adds nothing: each observation is flushed once.
    assert (
        _samples(registry, "mlcp_inference_requests_total")[("mlcp_inference_requests_total", (("code", "415"),))] == 1
    )
