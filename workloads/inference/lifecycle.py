"""The served model's lifecycle: loading -> ready, or loading -> failed (for good); draining at exit.

Loading runs on a background thread so the server answers /ping with 503 while it lasts. A
failed load is final: /ping stays 503, the log says why once, and the orchestrator decides
(a rollout aborts, Kubernetes restarts the pod).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

from workloads.inference.errors import ArtifactError
from workloads.inference.metrics import ServerMetrics
from workloads.inference.repository import LoadedModel, ModelRepository, describe, load_with_retries

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"


class ModelSlot:
    def __init__(
        self,
        repository: ModelRepository,
        metrics: ServerMetrics,
        attempts: int,
        backoff_s: float,
        on_ready_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._repository = repository
        self._on_ready_change = on_ready_change or (lambda ready: None)
        self._metrics = metrics
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._stop = threading.Event()
        self._settled = threading.Event()
        self._thread: threading.Thread | None = None
        self.phase = Phase.LOADING
        self.model: LoadedModel | None = None
        self.failure: str | None = None

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def start_loading(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
            self._thread.start()

    def wait_settled(self, timeout: float | None = None) -> bool:
        """True once loading has ended, either way (tests and the benchmark use it)."""
        return self._settled.wait(timeout)

    def start_draining(self) -> None:
        self._stop.set()
        if self.phase is not Phase.FAILED:
            self.phase = Phase.DRAINING
        self._on_ready_change(False)

    def _load(self) -> None:
        log.info("loading model from %s", self._repository.location)
        try:
            model = load_with_retries(
                self._repository,
                self._attempts,
                self._backoff_s,
                sleep=self._stop.wait,
                should_stop=self._stop.is_set,
            )
        except ArtifactError as exc:
            self._fail(f"{exc.reason}: {exc}")
        except Exception as exc:  # a bug, or something torch raised past our checks: still never ready
            log.exception("unexpected error while loading the model")
            self._fail(f"unexpected error: {exc!r}")
        else:
            self._become_ready(model)
        finally:
            self._settled.set()

    def _become_ready(self, model: LoadedModel) -> None:
        self.model = model
        self._metrics.model_loaded(model.classes)
        if self.phase is Phase.LOADING:
            self.phase = Phase.READY
            self._on_ready_change(True)
            log.info("model ready from %s (%s)", self._repository.location, ", ".join(describe(model)))

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.phase = Phase.FAILED
        self._metrics.model_unloaded()
        log.error("MODEL NOT LOADED, the server will stay unready (/ping 503): %s", reason)
