"""The training pipeline's steps as values: the run every step is given (the execution's input,
parsed), and what each step hands back for the state machine to keep under its ResultPath.

The task Lambdas (functions/chalicelib/tasks.py) parse the execution's state into these and shape
the results back with `to_dict`, so the state machine's JSON is the same as ever. Pure values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.domain.datasets import DatasetObject
from control.domain.training import EvaluationGate, Hyperparameters, JobStatus, WorkerResources
from control.errors import InvalidInput

DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class PipelineRun:
    """One training pipeline execution's input (training.TrainingRequest.to_execution_input), parsed."""

    run_id: str
    model_name: str
    dataset: DatasetObject
    dataset_version: str = ""
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    gate: EvaluationGate = field(default_factory=EvaluationGate)
    workers: int = DEFAULT_WORKERS
    auto_deploy: str = ""  # deployment to roll out to when the gate passes ("" = none)
    requested_by: str = ""
    resources: WorkerResources | None = None  # pinned by the caller; None: right-sized by the platform
    poll_seconds: int | None = None  # the wait between two checks of the job (the Wait state reads it)
    execution_arn: str = ""  # the execution this run is ("" when a step is called by hand)

    @classmethod
    def parse(cls, state: Any, execution_arn: str = "") -> PipelineRun:
        if not isinstance(state, Mapping):
            raise InvalidInput("the step's input must be an object", field="state")
        run_id, model_name = _text(state, "run_id", required=True), _text(state, "model_name", required=True)
        raw = state.get("dataset")
        if not isinstance(raw, Mapping):
            raise InvalidInput("dataset must be an object", field="dataset")
        dataset_version = _text(state, "dataset_version")
        dataset = DatasetObject(
            bucket=_text(raw, "bucket", required=True, where="dataset"),
            key=_text(raw, "key", required=True, where="dataset"),
            model_name=_text(raw, "model_name", where="dataset") or model_name,
            dataset_version=_text(raw, "dataset_version", where="dataset") or dataset_version,
            etag=_text(raw, "etag", where="dataset"),
            version_id=_text(raw, "version_id", where="dataset"),
            size=_integer(raw, "size", 0, where="dataset"),
        )
        resources = state.get("resources")
        poll_seconds = state.get("poll_seconds")
        return cls(
            run_id=run_id,
            model_name=model_name,
            dataset=dataset,
            dataset_version=dataset_version,
            hyperparameters=Hyperparameters.parse(state.get("hyperparameters")),
            gate=EvaluationGate.parse(state.get("gate")),
            workers=_integer(state, "workers", DEFAULT_WORKERS),
            auto_deploy=_text(state, "auto_deploy"),
            requested_by=_text(state, "requested_by"),
            resources=WorkerResources.from_dict(resources) if isinstance(resources, Mapping) and resources else None,
            poll_seconds=None if poll_seconds is None else _integer(state, "poll_seconds", 0),
            execution_arn=execution_arn or _text(state, "execution_arn"),
        )

    @property
    def dataset_uri(self) -> str:
        return self.dataset.uri

    def to_input(self) -> dict[str, Any]:
        """The execution's input again (what the run's record keeps as its request)."""
        return (
            {
                "run_id": self.run_id,
                "model_name": self.model_name,
                "dataset_version": self.dataset_version,
                "dataset": self.dataset.to_dict(),
                "hyperparameters": self.hyperparameters.to_dict(),
                "gate": self.gate.to_dict(),
                "workers": self.workers,
                "auto_deploy": self.auto_deploy,
                "requested_by": self.requested_by,
            }
            | ({"resources": self.resources.to_dict()} if self.resources else {})
            | ({"poll_seconds": self.poll_seconds} if self.poll_seconds is not None else {})
        )


@dataclass(frozen=True)
class DatasetValidation:
    """ValidateDataset's result: the dataset's files (s3:// URIs), their bytes, and its columns."""

    files: Sequence[str]
    bytes: int
    columns: Sequence[str]

    def to_dict(self) -> dict[str, Any]:
        return {"files": list(self.files), "bytes": self.bytes, "columns": list(self.columns)}


@dataclass(frozen=True)
class StagedDataset:
    """StageDataset's result: where the copy lies on the checkpoint file system and what it took;
    `retention` is what the model's retention removed afterwards (or its error)."""

    folder: str
    uri: str  # the file the training job opens, as the pods see it
    files: int
    bytes: int
    reused: bool
    seconds: float
    retention: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What the run's record keeps (everything but the retention)."""
        return {
            "folder": self.folder,
            "uri": self.uri,
            "files": self.files,
            "bytes": self.bytes,
            "reused": self.reused,
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "retention": dict(self.retention)}

    @classmethod
    def parse(cls, raw: Any) -> StagedDataset | None:
        """The staging an execution's state carries; None before (or without) a staging."""
        if not isinstance(raw, Mapping) or not raw.get("uri"):
            return None
        seconds, retention = raw.get("seconds", 0.0), raw.get("retention")
        return cls(
            folder=_text(raw, "folder", where="staging"),
            uri=_text(raw, "uri", where="staging"),
            files=_integer(raw, "files", 0, where="staging"),
            bytes=_integer(raw, "bytes", 0, where="staging"),
            reused=bool(raw.get("reused", False)),
            seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
            retention=retention if isinstance(retention, Mapping) else {},
        )


@dataclass(frozen=True)
class LaunchedJob:
    """LaunchTraining's result: the job, when it started, how long it may run, where it writes."""

    job_name: str
    launched_at: str  # ISO UTC
    deadline_seconds: int
    output_uri: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "launched_at": self.launched_at,
            "deadline_seconds": self.deadline_seconds,
            "output_uri": self.output_uri,
        }

    @classmethod
    def parse(cls, raw: Any) -> LaunchedJob:
        if not isinstance(raw, Mapping):
            raise InvalidInput("job must be an object", field="job")
        return cls(
            job_name=_text(raw, "job_name", where="job"),
            launched_at=_text(raw, "launched_at", where="job"),
            deadline_seconds=_integer(raw, "deadline_seconds", 0, where="job"),
            output_uri=_text(raw, "output_uri", required=True, where="job"),
        )


@dataclass(frozen=True)
class JobCheck:
    """CheckTraining's result: the launched job with its status now (the state machine's Choice reads
    `state`)."""

    job: LaunchedJob
    status: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.job.to_dict(),
            "state": self.status.state.value,
            "reason": self.status.reason,
            "message": self.status.message,
        }


@dataclass(frozen=True)
class Evaluation:
    """EvaluateModel's result: the gate's verdict, the run's metrics and its verified artifact."""

    passed: bool
    metric: str
    value: float | None
    threshold: float
    metrics: Mapping[str, float]
    artifact_uri: str
    sha256: str
    framework: str = ""
    workers: int = 0
    trained_at: str = ""
    sample_request_uri: str = ""  # "" for runs that wrote no sample request

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "metrics": dict(self.metrics),
            "artifact_uri": self.artifact_uri,
            "sha256": self.sha256,
            "framework": self.framework,
            "workers": self.workers,
            "trained_at": self.trained_at,
            "sample_request_uri": self.sample_request_uri,
        }

    @classmethod
    def parse(cls, raw: Any) -> Evaluation:
        if not isinstance(raw, Mapping):
            raise InvalidInput("evaluation must be an object", field="evaluation")
        metrics = raw.get("metrics")
        value, threshold = raw.get("value"), raw.get("threshold")
        return cls(
            passed=bool(raw.get("passed", False)),
            metric=_text(raw, "metric", where="evaluation"),
            value=float(value) if isinstance(value, int | float) else None,
            threshold=float(threshold) if isinstance(threshold, int | float) else 0.0,
            metrics={str(k): float(v) for k, v in metrics.items() if _is_number(v)}
            if isinstance(metrics, Mapping)
            else {},
            artifact_uri=_text(raw, "artifact_uri", required=True, where="evaluation"),
            sha256=_text(raw, "sha256", required=True, where="evaluation"),
            framework=_text(raw, "framework", where="evaluation"),
            workers=_integer(raw, "workers", 0, where="evaluation"),
            trained_at=_text(raw, "trained_at", where="evaluation"),
            sample_request_uri=_text(raw, "sample_request_uri", where="evaluation"),
        )


@dataclass(frozen=True)
class Registration:
    """RegisterModel's result: the version the run became (`created` False: a retry found it)."""

    model_name: str
    version: int
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "version": self.version, "created": self.created}


@dataclass(frozen=True)
class RunFailure:
    """The Catch path's input: which run failed, the error Step Functions caught and its cause (a
    Lambda's JSON cause or plain text); a gate not met is its own error."""

    run_id: str
    error: str
    cause: Any

    GATE_NOT_MET = "EvaluationGateNotMet"

    @classmethod
    def parse(cls, state: Any) -> RunFailure:
        if not isinstance(state, Mapping):
            raise InvalidInput("the step's input must be an object", field="state")
        run_id = _text(state, "run_id", required=True)
        evaluation = state.get("evaluation") or {}
        if isinstance(evaluation, Mapping) and evaluation and not evaluation.get("passed", True):
            cause = (
                f"evaluation gate not met: {evaluation.get('metric')} = {evaluation.get('value')}, "
                f"threshold {evaluation.get('threshold')}"
            )
            return cls(run_id, cls.GATE_NOT_MET, cause)
        error = state.get("error") or {}
        if not isinstance(error, Mapping):
            error = {}
        return cls(run_id, str(error.get("Error", "")), error.get("Cause", ""))


@dataclass(frozen=True)
class FailureRecorded:
    """RecordFailure's result: the error and its readable cause, as kept on the run."""

    error: str
    cause: str

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "cause": self.cause}


def _text(raw: Mapping[str, Any], name: str, *, required: bool = False, where: str = "") -> str:
    path = f"{where}.{name}" if where else name
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{path} is required", field=path)
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{path} must be a string", field=path)
    return value


def _integer(raw: Mapping[str, Any], name: str, default: int, *, where: str = "") -> int:
    path = f"{where}.{name}" if where else name
    value = raw.get(name)
    if value is None:
        return default
    if not _is_number(value) or not float(value).is_integer():
        raise InvalidInput(f"{path} must be an integer", field=path)
    return int(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
