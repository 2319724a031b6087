"""Retention of staged datasets and checkpoints on the checkpoint file system (`POST /retention`,
`python -m control retention`, and after every staging for that model)."""

from __future__ import annotations

from typing import Any

from control.domain.datasets import parse_dataset_key
from control.domain.retention import Protected, RetentionApplied, RetentionPolicy, RetentionRequest, plan_retention
from control.domain.training_runs import RunRecord
from control.errors import ControlError, InvalidInput, NotFound
from control.ports import Platform

FINISHED_RUN_STATES = frozenset({"REGISTERED", "FAILED"})


def apply_retention(platform: Platform, request: RetentionRequest) -> RetentionApplied:
    """Decide what goes (and remove it unless a dry run); every decision comes with its reason."""
    policy, model = request.policy, request.model
    runs = platform.registry.list_runs()
    run_models = {run.run_id: run.model_name for run in runs}
    protected = _protected(platform, runs)
    entries = platform.efs.entries(run_models)
    if model is not None:
        entries = [e for e in entries if e.model == model]
    decisions = plan_retention(entries, policy, protected, now=platform.clock().timestamp())
    removed = [d for d in decisions if d.remove]
    if not request.dry_run:
        for decision in removed:
            platform.efs.remove(decision.entry.path)
    return RetentionApplied(request.dry_run, policy.keep_last, model, removed, [d for d in decisions if not d.remove])


def retain_after_staging(platform: Platform, model: str) -> dict[str, Any]:
    """The policy applied after each staging, for that model; a failure here never fails the run."""
    try:
        result = apply_retention(platform, RetentionRequest(RetentionPolicy(), dry_run=False, model=model))
    except (ControlError, OSError) as error:
        return {"error": str(error)}
    return {"removed": [d.entry.path for d in result.removed]}


def _protected(platform: Platform, runs: list[RunRecord]) -> Protected:
    dataset_versions: set[tuple[str, str]] = set()
    protected_runs: set[str] = set()
    folders: set[str] = set()
    for run in runs:
        if run.status not in FINISHED_RUN_STATES:
            protected_runs.add(run.run_id)
            if run.staging_folder:
                folders.add(run.staging_folder)
    for listed in platform.registry.list_models():
        try:
            versions = platform.registry.list_versions(listed.model_name)
        except NotFound:
            continue
        for version in versions:
            lineage = version.lineage
            protected_runs.add(lineage.training_run_id)
            bucket, _, key = lineage.dataset_uri.removeprefix("s3://").partition("/")
            try:
                dataset = parse_dataset_key(bucket, key)
            except InvalidInput:
                dataset = None
            if dataset is not None:
                dataset_versions.add((dataset.model_name, dataset.dataset_version))
    return Protected(frozenset(dataset_versions), frozenset(protected_runs), frozenset(folders))
