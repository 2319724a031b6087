"""What a caller asks about training runs, and what it gets back: a request to train on a dataset
(`POST /training-runs`), the run a start gave (or a dataset event's object that started nothing),
a run as recorded, and a run's timeline. Pure values."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.domain.datasets import DatasetObject, parse_dataset_key, parse_dataset_uri
from control.domain.names import check_deployment_name
from control.domain.timeline import Step
from control.domain.training import EvaluationGate, Hyperparameters, WorkerResources, parse_workers
from control.errors import InvalidInput

REQUEST_FIELDS = ("dataset_uri", "model_name", "hyperparameters", "gate", "workers", "auto_deploy", "resources")


@dataclass(frozen=True)
class TrainingRunRequest:
    """`POST /training-runs`, parsed: train on the dataset object `dataset` names (its size and
    version are read from the object store when the run starts)."""

    dataset: DatasetObject
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    gate: EvaluationGate = field(default_factory=EvaluationGate)
    workers: int = 2
    auto_deploy: str = ""  # deployment to roll out to when the gate passes ("" = none)
    resources: WorkerResources | None = None  # None: right-sized by the platform

    @classmethod
    def parse(cls, body: Any) -> TrainingRunRequest:
        if not isinstance(body, Mapping):
            raise InvalidInput("the request body must be a JSON object", field="body")
        unknown = sorted(set(body) - set(REQUEST_FIELDS))
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(unknown)}", field=unknown[0])
        bucket, key = parse_dataset_uri(body.get("dataset_uri"))
        dataset = parse_dataset_key(bucket, key)
        if dataset is None:
            raise InvalidInput(
                "dataset_uri must name a data.csv or a _manifest.json under datasets/<model>/<version>/",
                field="dataset_uri",
            )
        if "model_name" in body and body["model_name"] != dataset.model_name:
            raise InvalidInput("model_name does not match the dataset's folder", field="model_name")
        auto_deploy = body.get("auto_deploy") or ""
        if auto_deploy:
            check_deployment_name(auto_deploy, "auto_deploy")
        return cls(
            dataset=dataset,
            hyperparameters=Hyperparameters.parse(body.get("hyperparameters")),
            gate=EvaluationGate.parse(body.get("gate")),
            workers=parse_workers(body.get("workers")),
            auto_deploy=auto_deploy,
            resources=WorkerResources.parse(body.get("resources")),
        )


@dataclass(frozen=True)
class StartedRun:
    """A training pipeline started for a dataset, or found already started (`duplicate`)."""

    run_id: str
    execution_arn: str
    model_name: str
    dataset_uri: str
    duplicate: bool = False

    @property
    def outcome(self) -> str:
        return "duplicate" if self.duplicate else "started"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "run_id": self.run_id,
            "execution_arn": self.execution_arn,
            "model_name": self.model_name,
            "dataset_uri": self.dataset_uri,
        }


class Skip(enum.StrEnum):
    IGNORED = "ignored"  # not an object that completes a dataset (a part, a test event)
    REJECTED = "rejected"  # wrong: dead-lettered with the reason


@dataclass(frozen=True)
class NotStarted:
    """An S3 event (`key` None) or one of its objects that started no run, and why."""

    outcome: Skip
    reason: str
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        where = {} if self.key is None else {"key": self.key}
        return {"outcome": self.outcome.value, **where, "reason": self.reason}


DatasetEventOutcome = StartedRun | NotStarted


@dataclass(frozen=True)
class RunRecord:
    """A training run as the registry keeps it: its id and the fields the pipeline's steps wrote
    (status, request, staging, job, metrics, usage, recommendation, failure...)."""

    run_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return str(self.fields.get("model_name", ""))

    @property
    def status(self) -> str:
        return str(self.fields.get("status", ""))

    @property
    def staging_folder(self) -> str:
        """The staged dataset's folder on the checkpoint file system; "" before staging."""
        staging = self.fields.get("staging")
        return str(staging.get("folder") or "") if isinstance(staging, Mapping) else ""

    @property
    def recommendation(self) -> Mapping[str, Any] | None:
        """Right-sizing's recommendation from the run's measured use; None when never measured."""
        recommendation = self.fields.get("recommendation")
        return recommendation if isinstance(recommendation, Mapping) and recommendation else None

    @property
    def measured_at(self) -> str:
        return str(self.fields.get("measured_at", ""))


@dataclass(frozen=True)
class TrainingRun:
    """A run as the registry records it (`record`, without its id) and its pipeline execution
    (None when Step Functions has none)."""

    run_id: str
    record: Mapping[str, Any]
    execution: Mapping[str, Any] | None


@dataclass(frozen=True)
class RunTimeline:
    run_id: str
    execution_arn: str
    steps: Sequence[Step]
