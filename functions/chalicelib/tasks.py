"""The task Lambdas the state machines call. Each: state in, one use case, result out."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.runtime import count, task
from control.domain.deployments import StepRequest
from control.ports import Platform
from control.usecases import rollouts, training

tasks = Blueprint(__name__)


@tasks.lambda_function(name="validate_dataset")
@task
def validate_dataset(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.validate_dataset(platform, state)


@tasks.lambda_function(name="stage_dataset")
@task
def stage_dataset(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.stage_dataset(platform, state)


@tasks.lambda_function(name="launch_training")
@task
def launch_training(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.launch_training(platform, state)


@tasks.lambda_function(name="check_training")
@task
def check_training(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.check_training(platform, state)


@tasks.lambda_function(name="evaluate_model")
@task
def evaluate_model(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.evaluate_model(platform, state)


@tasks.lambda_function(name="register_model")
@task
def register_model(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    registered = training.register_model(platform, state, execution_arn)
    if registered["created"]:  # a retried task that finds its version counts nothing
        count("ModelVersionRegistered", model=registered["model_name"])
    return registered


@tasks.lambda_function(name="record_run_failure")
@task
def record_run_failure(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return training.record_run_failure(platform, state)


@tasks.lambda_function(name="start_rollout")
@task
def start_rollout(platform: Platform, state: dict[str, Any], execution_arn: str) -> Any:
    return rollouts.start_from_pipeline(platform, state)


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
