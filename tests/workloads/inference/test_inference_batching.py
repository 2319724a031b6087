"""Micro-batching: concurrent invocations share one forward pass, and each gets its own answer."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from tests.support.inference_http import asgi_request, labels, samples
from workloads.inference.batching import MicroBatcher
from workloads.inference.handler import Prediction

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 3.1, 1.5, 0.1]]
JSON = {"Content-Type": "application/json"}


async def _concurrently(app, bodies: list[bytes]):
    return await asyncio.gather(*(asgi_request(app, "POST", "/invocations", body, JSON) for body in bodies))


def test_concurrent_invocations_share_one_forward_pass_and_each_gets_its_own_rows(make_server) -> None:
    server = make_server()
    app = server.data_app
    bodies = [json.dumps({"instances": [row]}).encode() for row in ROWS[:3]] + [json.dumps(ROWS[1:]).encode()]
    alone = [asyncio.run(_concurrently(app, [body]))[0].json() for body in bodies]
    app.requests_in_progress = lambda: len(bodies)  # what uvicorn's task count says under load
    together = asyncio.run(_concurrently(app, bodies))
    assert [reply.status for reply in together] == [200] * 4
    assert [reply.json()["predictions"] for reply in together] == [a["predictions"] for a in alone]
    for reply, solo in zip(together, alone, strict=True):
        np.testing.assert_allclose(reply.json()["probabilities"], solo["probabilities"], rtol=1e-5)
    found = samples(server)
    assert found[("mlcp_inference_batch_size_count", labels())] == 4 + 1  # four alone, then one pass of four
    assert found[("mlcp_inference_batch_size_bucket", labels(le="2.0"))] == 4
    assert found[("mlcp_inference_batch_size_sum", labels())] == 4 + 4
    assert found[("mlcp_inference_requests_total", labels(code="200"))] == 8


def test_a_bad_request_fails_alone_and_never_joins_the_batch(make_server) -> None:
    server = make_server()
    app = server.data_app
    app.requests_in_progress = lambda: 3
    good = json.dumps([ROWS[0]]).encode()
    replies = asyncio.run(_concurrently(app, [good, json.dumps([[1.0, 2.0]]).encode(), good]))
    assert [reply.status for reply in replies] == [200, 400, 200]
    assert replies[1].json()["error"] == "bad_request"
    assert replies[0].json() == replies[2].json()


class _Recorder:
    """A stand-in forward pass: prediction = row sums, so each request's share is checkable."""

    def __init__(self, fail_batches: bool = False) -> None:
        self.calls: list[int] = []
        self.fail_batches = fail_batches

    def __call__(self, rows: np.ndarray, model: object, requests: int) -> Prediction:
        self.calls.append(requests)
        if self.fail_batches and requests > 1:
            raise RuntimeError("the batch broke the model")
        if (rows < 0).any():
            raise RuntimeError("negative rows break this model")
        sums = rows.sum(axis=1)
        return Prediction(sums.astype(np.int64), rows, sums.tolist())


def _run(batcher: MicroBatcher, parts: list[np.ndarray], in_progress: int) -> list[object]:
    model = object()

    async def main() -> list[object]:
        jobs = [batcher.predict(model, part, in_progress) for part in parts]  # type: ignore[arg-type]
        return await asyncio.gather(*jobs, return_exceptions=True)

    return asyncio.run(main())


def test_a_request_alone_never_waits_for_a_batch() -> None:
    forward = _Recorder()
    results = _run(MicroBatcher(forward), [np.ones((2, 3))], in_progress=1)
    assert forward.calls == [1]
    assert results[0].labels == [3.0, 3.0]  # type: ignore[attr-defined]


def test_a_failing_batch_is_run_again_one_request_at_a_time() -> None:
    forward = _Recorder()
    parts = [np.ones((1, 2)), -np.ones((1, 2)), 2 * np.ones((2, 2))]
    results = _run(MicroBatcher(forward), parts, in_progress=3)
    assert forward.calls == [3, 1, 1, 1]
    assert results[0].labels == [2.0]  # type: ignore[attr-defined]
    assert isinstance(results[1], RuntimeError)
    assert results[2].labels == [4.0, 4.0]  # type: ignore[attr-defined]


def test_a_batch_holds_at_most_max_rows() -> None:
    forward = _Recorder()
    parts = [np.full((2, 1), float(i)) for i in range(5)]
    results = _run(MicroBatcher(forward, max_rows=4), parts, in_progress=5)
    assert forward.calls == [2, 2, 1]
    assert [r.labels for r in results] == [[float(i)] * 2 for i in range(5)]  # type: ignore[attr-defined]


def test_with_a_wait_bound_a_batch_runs_when_every_request_in_progress_has_joined() -> None:
    forward = _Recorder()
    batcher = MicroBatcher(forward, max_wait_s=0.002)
    results = _run(batcher, [np.ones((1, 1))] * 3, in_progress=3)
    assert forward.calls == [3]
    assert all(r.labels == [1.0] for r in results)  # type: ignore[attr-defined]
    over_counted = _Recorder()
    _run(MicroBatcher(over_counted, max_wait_s=0.002), [np.ones((1, 1))] * 2, in_progress=5)
    assert over_counted.calls == [2]  # the timer ran it: nobody waits past the bound


def test_the_wait_is_bounded_at_two_milliseconds() -> None:
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(_Recorder(), max_wait_s=0.003)
