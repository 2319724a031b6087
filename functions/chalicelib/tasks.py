"""The task Lambdas the state machines call. Each: the execution's state parsed into domain values,
one use case, its result shaped into what the state machine keeps under the step's ResultPath."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import count, task
from control.domain.deployments import PipelineRollout, StepRequest
from control.domain.pipeline_steps import Evaluation, LaunchedJob, PipelineRun, RunFailure, StagedDataset
from control.ports import Platform
from control.usecases import rollouts, training

tasks = Blueprint(__name__)


@tasks.lambda_function(name="validate_dataset")
@task
def validate_dataset(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.validate_dataset(platform, PipelineRun.parse(state, execution_arn)).to_dict()


@tasks.lambda_function(name="stage_dataset")
@task
def stage_dataset(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.stage_dataset(platform, PipelineRun.parse(state, execution_arn)).to_dict()


@tasks.lambda_function(name="launch_training")
@task
def launch_training(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    run = PipelineRun.parse(state, execution_arn)
    return training.launch_training(platform, run, StagedDataset.parse(state.get("staging"))).to_dict()


@tasks.lambda_function(name="check_training")
@task
def check_training(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    run = PipelineRun.parse(state, execution_arn)
    return training.check_training(platform, run, LaunchedJob.parse(state.get("job"))).to_dict()


@tasks.lambda_function(name="evaluate_model")
@task
def evaluate_model(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    run = PipelineRun.parse(state, execution_arn)
    return training.evaluate_model(platform, run, LaunchedJob.parse(state.get("job"))).to_dict()


@tasks.lambda_function(name="register_model")
@task
def register_model(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    run = PipelineRun.parse(state, execution_arn)
    registered = training.register_model(platform, run, Evaluation.parse(state.get("evaluation")))
    if registered.created:  # a retried task that finds its version counts nothing
        count("ModelVersionRegistered", model=registered.model_name)
    return registered.to_dict()


@tasks.lambda_function(name="record_run_failure")
@task
def record_run_failure(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.record_run_failure(platform, RunFailure.parse(state)).to_dict()


@tasks.lambda_function(name="start_rollout")
@task
def start_rollout(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    started = rollouts.start_from_pipeline(platform, PipelineRollout.parse(state))
    if started.skipped:
        return {"skipped": started.skipped}
    return {"deployment": started.deployment, "execution_arn": started.execution_arn}


@tasks.lambda_function(name="reconcile_rollout")
@task
def reconcile_rollout(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    step = rollouts.reconcile_step(platform, StepRequest.parse(state))
    return {
        "deployment": step.deployment,
        "phase": step.phase.value,
        "active_version": step.active_version,
        "reason": step.reason,
        "done": step.done,
        "requeue_after": step.requeue_after,
    }
