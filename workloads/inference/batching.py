"""Adaptive micro-batching: invocations handled at the same moment share one forward pass.

Each worker runs the model on its event loop. When several requests are in progress at once
(their tasks ready in the same turn of the loop), each decoded request joins the open batch
instead of running the model alone. The batch runs
- as soon as it holds every request in progress (the last one to join runs it, no wait), or
  `max_rows` rows;
- otherwise at the end of the loop's turn (`call_soon`), or after `max_wait_s` (at most 2 ms)
  when that is set: the bound on what a request waits for others.
A request alone (nothing else in progress) never waits: it runs the model at once, so a lone
client (c=1) pays nothing for batching.

Why: for a small model one forward of k rows costs about what one row does (TorchScript's call,
softmax and conversions are a fixed ~25 µs), so at concurrency the model's share of each request
falls about k-fold. Decoding and encoding stay per request. A batch that fails is run again one
request at a time, so a request only ever fails for its own rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from workloads.inference.handler import Prediction
from workloads.inference.repository import LoadedModel

MAX_WAIT_LIMIT_S = 0.002  # issue 15: a bounded wait, at most 2 ms

Predict = Callable[[np.ndarray, LoadedModel, int], Prediction]  # rows, model, requests in the batch


class MicroBatcher:
    def __init__(self, predict: Predict, max_rows: int = 64, max_wait_s: float = 0.0) -> None:
        if not 0.0 <= max_wait_s <= MAX_WAIT_LIMIT_S:
            raise ValueError(f"max_wait_s must be between 0 and {MAX_WAIT_LIMIT_S}, not {max_wait_s}")
        self._predict = predict
        self._max_rows = max(1, max_rows)
        self._max_wait_s = max_wait_s
        self._rows: list[np.ndarray] = []
        self._waiters: list[asyncio.Future[Prediction]] = []
        self._pending_rows = 0
        self._model: LoadedModel | None = None
        self._timer: asyncio.Handle | asyncio.TimerHandle | None = None

    async def predict(self, model: LoadedModel, rows: np.ndarray, in_progress: int) -> Prediction:
        """`rows` through `model`, alone or in a batch; `in_progress`: requests being handled now,
        this one included (an over-count only makes the batch wait for the end of the loop's turn)."""
        if not self._waiters and (in_progress <= 1 or self._max_rows == 1 or len(rows) >= self._max_rows):
            return self._predict(rows, model, 1)
        if self._waiters and (model is not self._model or self._pending_rows + len(rows) > self._max_rows):
            self._run()  # this request starts the next batch
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Prediction] = loop.create_future()
        self._rows.append(rows)
        self._waiters.append(waiter)
        self._pending_rows += len(rows)
        self._model = model
        if len(self._waiters) >= in_progress or self._pending_rows >= self._max_rows:
            self._run()
        elif self._timer is None:
            if self._max_wait_s > 0:
                self._timer = loop.call_later(self._max_wait_s, self._run)
            else:
                self._timer = loop.call_soon(self._run)
        return await waiter

    def _run(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows, waiters, model = self._rows, self._waiters, self._model
        self._rows, self._waiters, self._pending_rows, self._model = [], [], 0, None
        if not waiters or model is None:
            return
        if len(waiters) == 1:
            self._settle(waiters[0], rows[0], model, 1)
            return
        try:
            prediction = self._predict(np.concatenate(rows), model, len(waiters))
        except Exception:  # one request's rows may be what breaks the model: each on its own
            for waiter, part in zip(waiters, rows, strict=True):
                self._settle(waiter, part, model, 1)
            return
        start = 0
        for waiter, part in zip(waiters, rows, strict=True):
            stop = start + len(part)
            if not waiter.done():  # cancelled: its client went away
                waiter.set_result(prediction.part(start, stop))
            start = stop

    def _settle(self, waiter: asyncio.Future[Prediction], rows: np.ndarray, model: LoadedModel, size: int) -> None:
        try:
            result = self._predict(rows, model, size)
        except Exception as exc:
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if not waiter.done():
            waiter.set_result(result)
