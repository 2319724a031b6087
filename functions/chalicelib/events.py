"""Event handlers: datasets dropped into S3."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from chalice import Blueprint

from chalicelib.deployments_api import alerts_json
from chalicelib.runtime import count_rollbacks, current_platform, logger, metrics
from control.domain.alert_payload import parse_sns_event
from control.domain.datasets import parse_s3_event
from control.domain.training_runs import DatasetEventOutcome
from control.errors import ControlError, InvalidInput
from control.usecases import rollouts, training

events = Blueprint(__name__)


@events.lambda_function(name="on_dataset_uploaded")
def on_dataset_uploaded(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """S3 ObjectCreated under datasets/: start one pipeline per completed dataset.

    Registered in AWS as the bucket's notification target (terraform) and locally by the
    embedded runtime; a raw Lambda function so that malformed records reach our own checks.
    """
    platform = current_platform()
    try:
        created = parse_s3_event(event)
    except InvalidInput as error:  # dead-lettered whole: nothing lost
        handled: list[DatasetEventOutcome] = [training.reject_dataset_event(platform, error, event)]
    else:
        handled = training.handle_dataset_event(platform, created)
    outcomes = [outcome.to_dict() for outcome in handled]
    for outcome in outcomes:
        metrics.add_metric(name=f"Datasets{outcome['outcome'].title()}", unit=MetricUnit.Count, value=1)
        logger.info("dataset event", extra=outcome)
    metrics.flush_metrics(raise_on_empty_metrics=False)
    return {"outcomes": outcomes}


@events.lambda_function(name="on_alert_notification")
def on_alert_notification(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Alertmanager's sns_configs → SNS → here: the same decisions as the webhook route."""
    platform = current_platform()
    try:
        payloads = parse_sns_event(event)
    except ControlError as error:
        platform.dead_letters.send(
            source="alertmanager-sns", error=error.code, reason=error.message, payload=event, now=platform.clock()
        )
        logger.warning("alert notification rejected", extra={"reason": error.message})
        return {"rejected": error.message}
    result = alerts_json(rollouts.handle_alerts(platform, payloads))
    logger.info("alerts handled", extra=result)
    count_rollbacks(result)
    return result
