"""Training requests, hyperparameters, job specs and job status: pure values and rules."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from control.errors import InvalidInput


@dataclass(frozen=True)
class Hyperparameters:
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 0.05
    hidden_units: int = 32
    seed: int = 42

    LIMITS = {
        "epochs": (1, 1000),
        "batch_size": (1, 65536),
        "learning_rate": (1e-6, 10.0),
        "hidden_units": (1, 4096),
        "seed": (0, 2**31 - 1),
    }

    @classmethod
    def parse(cls, raw: Any) -> Hyperparameters:
        if raw is None:
            return cls()
        _check_known_fields(raw, "hyperparameters", cls.LIMITS)
        values: dict[str, Any] = {}
        for name, (low, high) in cls.LIMITS.items():
            if name not in raw:
                continue
            value = raw[name]
            kind = float if name == "learning_rate" else int
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (kind is int and not float(value).is_integer())
            ):
                raise InvalidInput(f"hyperparameters.{name} must be a number", field=f"hyperparameters.{name}")
            if not low <= value <= high:
                raise InvalidInput(
                    f"hyperparameters.{name} must be between {low} and {high}; got {value}",
                    field=f"hyperparameters.{name}",
                )
            values[name] = kind(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationGate:
    """Register the model only if `metric` clears `threshold` (>= for accuracy, <= for losses)."""

    metric: str = "val_accuracy"
    threshold: float = 0.0

    LOWER_IS_BETTER = frozenset({"val_loss", "train_loss"})
    KNOWN_METRICS = frozenset({"val_accuracy", "val_loss", "train_loss"})

    @classmethod
    def parse(cls, raw: Any) -> EvaluationGate:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidInput("gate must be an object with metric and threshold", field="gate")
        metric = raw.get("metric", "val_accuracy")
        if metric not in cls.KNOWN_METRICS:
            raise InvalidInput(
                f"gate.metric must be one of {', '.join(sorted(cls.KNOWN_METRICS))}; got {metric!r}",
                field="gate.metric",
            )
        threshold = raw.get("threshold", 0.0)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise InvalidInput("gate.threshold must be a number", field="gate.threshold")
        return cls(metric=metric, threshold=float(threshold))

    def passes(self, metrics: Mapping[str, float]) -> bool:
        value = metrics.get(self.metric)
        if value is None or value != value:  # missing or NaN never passes
            return False
        if self.metric in self.LOWER_IS_BETTER:
            return float(value) <= self.threshold
        return float(value) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "threshold": self.threshold}


@dataclass(frozen=True)
class WorkerResources:
    """What each worker pod requests: CPU, memory and its EBS scratch volume (a generic ephemeral
    volume, gone with the pod). Memory's limit is twice the request (room for a peak)."""

    cpu_millicores: int = 2000
    memory_mib: int = 8192
    scratch_gib: int = 50

    LIMITS = {
        "cpu_millicores": (100, 192_000),
        "memory_mib": (256, 2_048_000),
        "scratch_gib": (1, 16_384),
    }

    @classmethod
    def parse(cls, raw: Any) -> WorkerResources | None:
        """`resources` of a request: None when absent (the platform picks, right-sized)."""
        if raw is None:
            return None
        _check_known_fields(raw, "resources", cls.LIMITS)
        values: dict[str, int] = {}
        for name, (low, high) in cls.LIMITS.items():
            if name not in raw:
                continue
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(
                    f"resources.{name} must be an integer between {low} and {high}; got {value!r}",
                    field=f"resources.{name}",
                )
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, int]:
        return {"cpu_millicores": self.cpu_millicores, "memory_mib": self.memory_mib, "scratch_gib": self.scratch_gib}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> WorkerResources:
        return cls(**{name: int(raw[name]) for name in cls.LIMITS if name in raw})


@dataclass(frozen=True)
class TrainingJobSpec:
    """What the cluster is asked to run: everything the MPIJob (or local run) needs."""

    run_id: str
    model_name: str
    dataset_uri: str
    output_uri: str
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    workers: int = 2
    gpus_per_worker: int = 1
    deadline_seconds: int = 3600
    dataset_version_id: str = ""  # the S3 version the event named: an overwrite cannot change the run
    resources: WorkerResources = field(default_factory=WorkerResources)

    def training_args(self, checkpoint_dir: str, metrics_port: int = 9100, scratch_dir: str = "") -> list[str]:
        hp = self.hyperparameters
        pinned = ["--dataset-version-id", self.dataset_version_id] if self.dataset_version_id else []
        pinned += ["--scratch-dir", scratch_dir] if scratch_dir else []
        return [
            "--dataset-uri", self.dataset_uri,
            "--output-uri", self.output_uri,
            "--checkpoint-dir", checkpoint_dir,
            "--model-name", self.model_name,
            "--run-id", self.run_id,
            "--epochs", str(hp.epochs),
            "--batch-size", str(hp.batch_size),
            "--learning-rate", str(hp.learning_rate),
            "--hidden-units", str(hp.hidden_units),
            "--seed", str(hp.seed),
            "--metrics-port", str(metrics_port),
            *pinned,
        ]  # fmt: skip


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


@dataclass(frozen=True)
class JobStatus:
    name: str
    state: JobState
    reason: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "state": self.state.value, "reason": self.reason, "message": self.message}


MAX_WORKERS = 64


@dataclass(frozen=True)
class TrainingRequest:
    """A request to train `model_name` on one dataset object; the state machine's input."""

    model_name: str
    dataset_version: str
    dataset: Mapping[str, Any]  # DatasetObject.to_dict()
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    gate: EvaluationGate = field(default_factory=EvaluationGate)
    workers: int = 2
    auto_deploy: str = ""  # deployment to roll out to when the gate passes ("" = none)
    requested_by: str = "s3"
    resources: WorkerResources | None = None  # pinned by the caller; None: right-sized by the platform

    def content_key(self) -> dict[str, Any]:
        """What makes two requests the same run (see datasets.run_id_for)."""
        return {
            "etag": self.dataset.get("etag", ""),
            "version_id": self.dataset.get("version_id", ""),
            "key": self.dataset.get("key", ""),
            "hyperparameters": self.hyperparameters.to_dict(),
            "gate": self.gate.to_dict(),
            "workers": self.workers,
        } | ({"resources": self.resources.to_dict()} if self.resources else {})

    def to_execution_input(self, run_id: str) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "model_name": self.model_name,
            "dataset_version": self.dataset_version,
            "dataset": dict(self.dataset),
            "hyperparameters": self.hyperparameters.to_dict(),
            "gate": self.gate.to_dict(),
            "workers": self.workers,
            "auto_deploy": self.auto_deploy,
            "requested_by": self.requested_by,
        } | ({"resources": self.resources.to_dict()} if self.resources else {})


def parse_workers(raw: Any) -> int:
    if raw is None:
        return 2
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_WORKERS:
        raise InvalidInput(f"workers must be an integer between 1 and {MAX_WORKERS}", field="workers")
    return raw


@dataclass(frozen=True)
class TrainingProgress:
    """A running job's own metrics (`mlcp_training_*{run_id}`); all None until it reports."""

    epoch: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    samples_per_second: float | None = None

    @property
    def known(self) -> bool:
        return self.epoch is not None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "samples_per_second": self.samples_per_second,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainingProgress:
        return cls(**{name: _number_or_none(raw.get(name)) for name in cls.__dataclass_fields__})


def progress_queries(run_id: str) -> dict[str, str]:
    """The PromQL that reads each TrainingProgress field of a run."""
    selector = f'run_id="{run_id}"'
    return {
        "epoch": f"max(mlcp_training_epoch{{{selector}}})",
        "train_loss": f'max(mlcp_training_loss{{{selector},split="train"}})',
        "val_loss": f'max(mlcp_training_loss{{{selector},split="val"}})',
        "val_accuracy": f'max(mlcp_training_accuracy{{{selector},split="val"}})',
        "samples_per_second": f"max(mlcp_training_samples_per_second{{{selector}}})",
    }


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _check_known_fields(raw: Any, field: str, known: Mapping[str, Any]) -> None:
    """`raw` is an object whose keys are all in `known`; InvalidInput naming the first stranger."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{field} must be an object", field=field)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(
            f"unknown {field}: {', '.join(unknown)} (known: {', '.join(known)})",
            field=f"{field}.{unknown[0]}",
        )
