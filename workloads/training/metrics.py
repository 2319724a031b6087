"""Training progress as Prometheus metrics (docs/contracts.md, "Training job").

Nothing is registered at import time: `TrainingMetrics` owns its registry, and `serve` starts the
HTTP endpoint only when asked (rank 0, --metrics-port > 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

EPOCH_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass
class TrainingMetrics:
    model: str
    run_id: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        labels = ["model", "run_id"]
        self._epoch = Gauge("mlcp_training_epoch", "Epochs completed", labels, registry=self.registry)
        self._loss = Gauge(
            "mlcp_training_loss", "Mean loss of the last epoch", [*labels, "split"], registry=self.registry
        )
        self._accuracy = Gauge(
            "mlcp_training_accuracy", "Accuracy of the last epoch", [*labels, "split"], registry=self.registry
        )
        self._samples_per_second = Gauge(
            "mlcp_training_samples_per_second",
            "Training samples per second over all workers, last epoch",
            labels,
            registry=self.registry,
        )
        self._epoch_duration = Histogram(
            "mlcp_training_epoch_duration_seconds",
            "Wall time of one training epoch",
            labels,
            buckets=EPOCH_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._steps = Counter("mlcp_training_steps_total", "Optimizer steps taken", labels, registry=self.registry)
        self._labels = {"model": self.model, "run_id": self.run_id}
        # Series exist from the start, so a dashboard shows 0 rather than "no data" before epoch 1.
        self._epoch.labels(**self._labels).set(0)
        self._samples_per_second.labels(**self._labels).set(0)
        self._steps.labels(**self._labels)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def steps_taken(self, count: int) -> None:
        self._steps.labels(**self._labels).inc(count)

    def epoch_finished(self, record: dict[str, float]) -> None:
        self._epoch.labels(**self._labels).set(record["epoch"])
        self._loss.labels(**self._labels, split="train").set(record["train_loss"])
        self._loss.labels(**self._labels, split="val").set(record["val_loss"])
        self._accuracy.labels(**self._labels, split="train").set(record["train_accuracy"])
        self._accuracy.labels(**self._labels, split="val").set(record["val_accuracy"])
        self._samples_per_second.labels(**self._labels).set(record["samples_per_second"])
        self._epoch_duration.labels(**self._labels).observe(record["epoch_seconds"])
