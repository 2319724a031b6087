"""The AWS resources of the platform, as the local runtime creates them.

Terraform declares the same resources for AWS; tests/contract checks that the two agree
(table keys and index, bucket layout, function names, state machine placeholders).
"""

from __future__ import annotations

from typing import Any

APP_NAME = "mlcp"

TASK_FUNCTIONS = (
    "validate_dataset",
    "stage_dataset",
    "launch_training",
    "check_training",
    "evaluate_model",
    "register_model",
    "record_run_failure",
    "start_rollout",
    "reconcile_rollout",
)
EVENT_FUNCTIONS = ("on_dataset_uploaded", "on_alert_notification")
# Invoked on a schedule: an EventBridge rule in AWS, control.local.scheduler here.
SCHEDULED_FUNCTIONS = ("sweep_rollouts",)
ALL_FUNCTIONS = ("api_handler", *EVENT_FUNCTIONS, *TASK_FUNCTIONS, *SCHEDULED_FUNCTIONS)

STATE_MACHINES = {"training_pipeline": "training_pipeline.asl.json", "rollout": "rollout.asl.json"}


def function_name(stage: str, name: str) -> str:
    return f"{APP_NAME}-{stage}-{name}"


def registry_table_definition(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
