"""Training use cases: from a dataset (S3 event or API call) to a registered model version.

Each step of the training pipeline state machine calls one function here; each takes the run
(control.domain.pipeline_steps.PipelineRun) and what earlier steps gave, and returns its own result
as a value. The task Lambdas parse the execution's state and shape the results into it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from control.domain.datasets import (
    MANIFEST_FILE,
    DatasetObject,
    ObjectCreated,
    check_dataset_size,
    parse_dataset_key,
    run_id_for,
)
from control.domain.pipeline_steps import (
    DatasetValidation,
    Evaluation,
    FailureRecorded,
    JobCheck,
    LaunchedJob,
    PipelineRun,
    Registration,
    RunFailure,
    StagedDataset,
)
from control.domain.registry import Lineage, iso
from control.domain.staging import SourceObject, staged_folder
from control.domain.timeline import readable_cause, steps_from_history
from control.domain.training import (
    JobState,
    TrainingJobSpec,
    TrainingProgress,
    TrainingRequest,
    WorkerResources,
    progress_queries,
)
from control.domain.training_runs import (
    DatasetEventOutcome,
    NotStarted,
    RunRecord,
    RunTimeline,
    Skip,
    StartedRun,
    TrainingRun,
    TrainingRunRequest,
)
from control.errors import ControlError, InvalidInput, NotFound, TrainingFailed
from control.manifests.config import ManifestConfig
from control.manifests.training import CHECKPOINT_MOUNT, render_mpijob
from control.ports import Platform
from control.usecases.retention import retain_after_staging
from control.usecases.rightsizing import record_usage, resources_for

MAX_MANIFEST_FILES = 1000
HEADER_PROBE_BYTES = 64 * 1024
LABEL_COLUMN = "label"


# -- starting a run ----------------------------------------------------------------------------


def handle_dataset_event(platform: Platform, created: Sequence[ObjectCreated]) -> list[DatasetEventOutcome]:
    """An S3 notification's created objects: start one pipeline per completed dataset; dead-letter
    what is wrong.

    Returns one outcome per object. Nothing raised for bad input: it is recorded instead.
    """
    now = platform.clock()
    outcomes: list[DatasetEventOutcome] = []
    for obj in created:
        try:
            dataset = parse_dataset_key(obj.bucket, obj.key)
            if dataset is None:
                outcomes.append(NotStarted(Skip.IGNORED, "not a dataset trigger", obj.key))
                continue
            if obj.bucket != platform.settings.data_bucket:
                raise InvalidInput(f"bucket {obj.bucket!r} is not the data bucket", field="bucket")
            # The event names the object version it is about (versioned buckets); otherwise ask S3.
            info = obj if obj.etag and obj.version_id else platform.objects.head(obj.bucket, obj.key)
            check_dataset_size(info.size)
            request = TrainingRequest(
                model_name=dataset.model_name,
                dataset_version=dataset.dataset_version,
                dataset=_with_object_info(dataset, info.etag, info.version_id, info.size),
            )
            outcomes.append(start_pipeline(platform, request))
        except InvalidInput as error:
            _dead_letter(platform, "s3", error, {"bucket": obj.bucket, "key": obj.key, "size": obj.size}, now)
            outcomes.append(NotStarted(Skip.REJECTED, error.message, obj.key))
        except NotFound as error:  # deleted before we looked: nothing to train on
            _dead_letter(platform, "s3", error, {"bucket": obj.bucket, "key": obj.key}, now)
            outcomes.append(NotStarted(Skip.REJECTED, error.message, obj.key))
    return outcomes


def reject_dataset_event(platform: Platform, error: InvalidInput, event: Any) -> NotStarted:
    """An S3 notification that cannot be read: dead-lettered whole, with the reason."""
    _dead_letter(platform, "s3", error, event, platform.clock())
    return NotStarted(Skip.REJECTED, error.message)


def start_training(platform: Platform, request: TrainingRunRequest, actor: str) -> StartedRun:
    """`POST /training-runs`: start the pipeline for a dataset in the data bucket."""
    dataset = request.dataset
    if dataset.bucket != platform.settings.data_bucket:
        raise InvalidInput(f"datasets live in s3://{platform.settings.data_bucket}/", field="dataset_uri")
    try:
        info = platform.objects.head(dataset.bucket, dataset.key)
    except NotFound as error:
        raise InvalidInput(f"no dataset object at {dataset.uri}", field="dataset_uri") from error
    check_dataset_size(info.size)
    return start_pipeline(
        platform,
        TrainingRequest(
            model_name=dataset.model_name,
            dataset_version=dataset.dataset_version,
            dataset=_with_object_info(dataset, info.etag, info.version_id, info.size),
            hyperparameters=request.hyperparameters,
            gate=request.gate,
            workers=request.workers,
            auto_deploy=request.auto_deploy,
            requested_by=actor,
            resources=request.resources,
        ),
    )


def start_pipeline(platform: Platform, request: TrainingRequest) -> StartedRun:
    run_id = run_id_for(request.model_name, request.dataset_version, request.content_key())
    payload = request.to_execution_input(run_id) | {"poll_seconds": platform.settings.poll_seconds}
    started = platform.pipelines.start(platform.settings.training_state_machine_arn, run_id, payload)
    return StartedRun(
        run_id=run_id,
        execution_arn=started.execution_arn,
        model_name=request.model_name,
        dataset_uri=request.dataset["uri"],
        duplicate=started.duplicate,
    )


def _with_object_info(dataset: DatasetObject, etag: str, version_id: str, size: int) -> dict[str, Any]:
    return DatasetObject(
        bucket=dataset.bucket,
        key=dataset.key,
        model_name=dataset.model_name,
        dataset_version=dataset.dataset_version,
        etag=etag,
        version_id=version_id,
        size=size,
    ).to_dict()


def _dead_letter(platform: Platform, source: str, error: ControlError, payload: Any, now: datetime) -> None:
    platform.dead_letters.send(source=source, error=error.code, reason=error.message, payload=payload, now=now)


# -- pipeline steps ----------------------------------------------------------------------------


def validate_dataset(platform: Platform, run: PipelineRun) -> DatasetValidation:
    """Check the dataset before paying for GPUs: files present, sizes, a `label` column."""
    dataset = run.dataset
    _record(
        platform,
        run.run_id,
        status="VALIDATING",
        model_name=run.model_name,
        dataset_uri=dataset.uri,
        request=run.to_input(),
        created_at=iso(platform.clock()),
    )
    bucket, key = dataset.bucket, dataset.key
    # The object version the event named (an overwrite since then must not change this run);
    # a manifest's parts are read as they are now.
    pinned = {key: dataset.version_id}
    files = [key]
    if dataset.is_manifest:
        files = _manifest_files(platform, bucket, key, pinned[key])
    total = 0
    columns: list[str] = []
    for file_key in files:
        version = pinned.get(file_key, "")
        info = platform.objects.head(bucket, file_key, version_id=version)
        total += info.size
        probe = platform.objects.read_bytes(bucket, file_key, HEADER_PROBE_BYTES, version_id=version)
        header = _csv_header(probe, file_key)
        if columns and header != columns:
            raise InvalidInput(f"{file_key} has columns {header}, unlike the first file's {columns}", field="dataset")
        columns = header
    check_dataset_size(total)
    if LABEL_COLUMN not in columns:
        raise InvalidInput(f"the dataset has no {LABEL_COLUMN!r} column (columns: {columns})", field="dataset")
    if len(columns) < 2:
        raise InvalidInput("the dataset has no feature columns", field="dataset")
    return DatasetValidation([f"s3://{bucket}/{k}" for k in files], total, columns)


def _manifest_files(platform: Platform, bucket: str, key: str, version_id: str) -> list[str]:
    manifest = platform.objects.read_json(bucket, key, version_id=version_id)
    files = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise InvalidInput(f'{key} must be {{"files": ["part-0.csv", ...]}}', field="manifest.files")
    if len(files) > MAX_MANIFEST_FILES:
        raise InvalidInput(f"a manifest lists at most {MAX_MANIFEST_FILES} files", field="manifest.files")
    folder = key.rsplit("/", 1)[0]
    keys = []
    for name in files:
        if "/" in name or name in (".", "..") or name == MANIFEST_FILE:
            raise InvalidInput(
                f"manifest entry {name!r} must be a file name in the same folder", field="manifest.files"
            )
        keys.append(f"{folder}/{name}")
    return keys


def _csv_header(head: bytes, key: str) -> list[str]:
    try:
        first_line = head.decode("utf-8").splitlines()[0] if head else ""
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{key} is not UTF-8 text", field="dataset") from error
    if not first_line.strip():
        raise InvalidInput(f"{key} has no header row", field="dataset")
    return [column.strip() for column in next(csv.reader(io.StringIO(first_line)))]


def stage_dataset(platform: Platform, run: PipelineRun) -> StagedDataset:
    """Copy the dataset's exact S3 object versions onto the checkpoint file system, verified.

    The ranks then read the staged copy (no S3 access, no whole-dataset broadcast). A second run
    of the same object versions reuses the copy; an overwrite since the event fails the step
    (StagingFailed names the object) rather than staging other bytes."""
    sources = dataset_sources(platform, run.dataset)
    folder = staged_folder(run.model_name, run.dataset_version, sources)
    _record(platform, run.run_id, status="STAGING")
    result = platform.staging.stage(folder, sources, iso(platform.clock()))
    staged = StagedDataset(
        folder=folder,
        # The file the training job opens, as the pods (and the local cluster's mapping) see it.
        uri=f"{CHECKPOINT_MOUNT}/{folder}/{sources[0].name}",
        files=len(result.files),
        bytes=result.bytes,
        reused=result.reused,
        seconds=round(result.seconds, 3),
    )
    _record(platform, run.run_id, staging=staged.summary())
    return replace(staged, retention=retain_after_staging(platform, run.model_name))


def dataset_sources(platform: Platform, dataset: DatasetObject) -> list[SourceObject]:
    """The objects to stage, each pinned: the triggering object at the version (or ETag) the event
    named; a manifest's parts at the versions S3 holds now (as validation read them)."""
    bucket, key = dataset.bucket, dataset.key
    trigger = SourceObject(bucket, key, dataset.version_id, dataset.etag, dataset.size or -1)
    if not dataset.is_manifest:
        return [trigger]
    parts = []
    for part_key in _manifest_files(platform, bucket, key, trigger.version_id):
        info = platform.objects.head(bucket, part_key)
        parts.append(SourceObject(bucket, part_key, info.version_id, info.etag, info.size))
    return [trigger, *parts]


def job_spec(
    platform: Platform,
    run: PipelineRun,
    staged: StagedDataset | None = None,
    resources: WorkerResources | None = None,
) -> TrainingJobSpec:
    """The job a run asks for: it reads the staged copy when there is one, else the S3 object at the
    version the event named."""
    return TrainingJobSpec(
        run_id=run.run_id,
        model_name=run.model_name,
        dataset_uri=staged.uri if staged else run.dataset.uri,
        dataset_version_id="" if staged else run.dataset.version_id,
        output_uri=artifact_prefix(platform, run.model_name, run.run_id),
        hyperparameters=run.hyperparameters,
        workers=run.workers,
        resources=resources or run.resources or WorkerResources(),
    )


def artifact_prefix(platform: Platform, model_name: str, run_id: str) -> str:
    return f"s3://{platform.settings.artifacts_bucket}/models/{model_name}/runs/{run_id}/"


def launch_training(platform: Platform, run: PipelineRun, staged: StagedDataset | None = None) -> LaunchedJob:
    """Create the MPIJob (idempotent: the same job again is success)."""
    resources, resources_source = resources_for(platform, run)  # pinned, else right-sized
    spec = job_spec(platform, run, staged, resources)
    manifest = render_mpijob(spec, ManifestConfig.from_settings(platform.settings))
    platform.training.submit_training_job(manifest)
    launched_at = iso(platform.clock())
    _record(
        platform,
        spec.run_id,
        status="TRAINING",
        job_name=manifest["metadata"]["name"],
        launched_at=launched_at,
        resources=spec.resources.to_dict(),
        resources_source=resources_source,
    )
    return LaunchedJob(manifest["metadata"]["name"], launched_at, spec.deadline_seconds, spec.output_uri)


def check_training(platform: Platform, run: PipelineRun, job: LaunchedJob) -> JobCheck:
    """Poll the job. Failed or past its deadline: TrainingFailed with the job's own reason."""
    status = platform.training.training_job_status(job.job_name)
    if status.state == JobState.SUCCEEDED:
        record_usage(platform, run, job)  # right-sizing of the model's next run
    if status.state == JobState.FAILED:
        raise TrainingFailed(f"training job {status.name} failed: {status.reason}: {status.message}".strip(": "))
    if not status.state.finished:
        elapsed = (platform.clock() - datetime.fromisoformat(job.launched_at.replace("Z", "+00:00"))).total_seconds()
        if elapsed > float(job.deadline_seconds):
            platform.training.delete_training_job(job.job_name)
            raise TrainingFailed(f"training job {status.name} ran past its {job.deadline_seconds} s deadline")
    return JobCheck(job, status)


def evaluate_model(platform: Platform, run: PipelineRun, job: LaunchedJob) -> Evaluation:
    """Read the run's metadata, verify the artifact's sha256, and apply the evaluation gate."""
    bucket, prefix = _split(job.output_uri)
    try:
        metadata = platform.objects.read_json(bucket, prefix + "metadata.json")
    except NotFound as error:
        raise TrainingFailed("the training job finished without writing metadata.json") from error
    artifact_key = prefix + str(metadata.get("artifact", "model.pt"))
    actual = platform.objects.sha256(bucket, artifact_key)
    if actual != metadata.get("sha256"):
        raise TrainingFailed(f"artifact sha256 {actual} does not match metadata's {metadata.get('sha256')}")
    metrics = {k: float(v) for k, v in (metadata.get("metrics") or {}).items() if isinstance(v, (int, float))}
    gate = run.gate
    passed = gate.passes(metrics)
    _record(platform, run.run_id, status="EVALUATED", metrics=metrics, gate_passed=passed)
    # Older runs wrote no sample request: their versions deploy without preview traffic.
    sample = metadata.get("sample_request")
    sample_uri = f"s3://{bucket}/{prefix}{sample}" if isinstance(sample, str) and sample and "/" not in sample else ""
    return Evaluation(
        passed=passed,
        metric=gate.metric,
        value=metrics.get(gate.metric),
        threshold=gate.threshold,
        metrics=metrics,
        artifact_uri=f"s3://{bucket}/{artifact_key}",
        sha256=actual,
        framework=str(metadata.get("framework", "")),
        workers=int(metadata.get("workers", 0) or 0),
        trained_at=str(metadata.get("finished_at", "")),
        sample_request_uri=sample_uri,
    )


def register_model(platform: Platform, run: PipelineRun, evaluation: Evaluation) -> Registration:
    dataset = run.dataset
    lineage = Lineage(
        dataset_uri=dataset.uri,
        dataset_etag=dataset.etag,
        dataset_version_id=dataset.version_id,
        training_run_id=run.run_id,
        execution_arn=run.execution_arn,
        hyperparameters=run.hyperparameters.to_dict(),
        metrics=evaluation.metrics,
        artifact_uri=evaluation.artifact_uri,
        artifact_sha256=evaluation.sha256,
        code_version=platform.settings.code_version,
        framework=evaluation.framework,
        workers=evaluation.workers,
        trained_at=evaluation.trained_at,
        sample_request_uri=evaluation.sample_request_uri,
    )
    version, created = platform.registry.register_version(
        run.model_name, lineage, actor=f"pipeline:{run.run_id}", now=platform.clock()
    )
    _record(platform, run.run_id, status="REGISTERED", model_version=version.version)
    return Registration(version.model_name, version.version, created)


def record_run_failure(platform: Platform, failure: RunFailure) -> FailureRecorded:
    """The Catch path: keep the cause on the run so the API and the CLI can show it."""
    recorded = FailureRecorded(failure.error, readable_cause(failure.cause))
    _record(
        platform,
        failure.run_id,
        status="FAILED",
        error=recorded.error,
        cause=recorded.cause,
        failed_at=iso(platform.clock()),
    )
    return recorded


def list_runs(platform: Platform) -> list[RunRecord]:
    return platform.registry.list_runs()


def get_training_run(platform: Platform, run_id: str) -> TrainingRun:
    """The run's record and its execution; NotFound when there is neither."""
    arn = platform.pipelines.execution_arn(platform.settings.training_state_machine_arn, run_id)
    try:
        execution = platform.pipelines.describe(arn)
    except NotFound:
        execution = None
    try:
        record = platform.registry.get_run(run_id)
    except NotFound:
        if execution is None:
            raise
        record = RunRecord(run_id)
    return TrainingRun(run_id, record.fields, execution)


def run_timeline(platform: Platform, run_id: str) -> RunTimeline:
    """The run's pipeline execution and its timeline; NotFound if the run has no execution."""
    arn = platform.pipelines.execution_arn(platform.settings.training_state_machine_arn, run_id)
    try:
        events = platform.pipelines.history(arn)
    except NotFound as error:
        raise NotFound(f"run {run_id!r} has no Step Functions execution", field="run_id") from error
    return RunTimeline(run_id, arn, steps_from_history(events))


def training_progress(platform: Platform, run_id: str) -> TrainingProgress | None:
    """The running job's own metrics; None when the metrics cannot be read (progress is a nicety)."""
    try:
        return TrainingProgress(
            **{name: platform.metrics.value(query) for name, query in progress_queries(run_id).items()}
        )
    except (ControlError, ValueError, KeyError):
        return None


def _record(platform: Platform, run_id: str, **fields: Any) -> None:
    platform.registry.put_run(run_id, {**fields, "updated_at": iso(platform.clock())})


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
