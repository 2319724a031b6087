"""Deployment state on DynamoDB: one item per deployment, written only if its revision is unchanged.

The item holds the rollout spec, the recorded status (with its revision), the alert policy, the
idempotency keys of the alerts already acted on, and the name of the reconcile loop that owns the
deployment (a newer loop retires an older one). Two actors cannot both act: the loser of
a conditional write gets PreconditionFailed, re-reads and decides again.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from control.adapters.aws import aws_call, translate
from control.adapters.dynamodb_items import from_item, of_kind, to_item
from control.domain.alert_policy import AlertPolicy
from control.domain.canary import BLUE_GREEN, parse_strategy, strategy_to_dict
from control.domain.deployments import DeploymentRecord
from control.domain.rollout import RolloutSpec, RolloutStatus
from control.errors import PreconditionFailed

MAX_HANDLED_KEYS = 500


class DynamoDbDeployments:
    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    @aws_call("read deployment")
    def get(self, deployment: str) -> DeploymentRecord | None:
        response = self._db.get_item(
            TableName=self._table, Key=to_item({"pk": f"DEPLOYMENT#{deployment}", "sk": "STATE"}), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        item = from_item(response["Item"])
        return DeploymentRecord(
            spec=RolloutSpec.parse(item["spec"]),
            status=RolloutStatus.from_dict(item["status"]),
            policy=AlertPolicy.parse(item.get("policy")),
            handled_alerts=tuple(item.get("handled_alerts", [])),
            loop=item.get("loop", ""),
            strategy=parse_strategy(item.get("strategy") or BLUE_GREEN),
        )

    @aws_call("list deployments")
    def names(self) -> list[str]:
        return [item["gsi1sk"] for item in of_kind(self._db, self._table, "DEPLOYMENTS")]

    def put(self, record: DeploymentRecord, *, expected_revision: int | None) -> None:
        """Write the record if the stored revision is `expected_revision` (None: must not exist)."""
        condition = "attribute_not_exists(pk)" if expected_revision is None else "revision = :expected"
        values = {} if expected_revision is None else {":expected": expected_revision}
        item = {
            "pk": f"DEPLOYMENT#{record.status.deployment}",
            "sk": "STATE",
            "gsi1pk": "DEPLOYMENTS",
            "gsi1sk": record.status.deployment,
            "revision": record.status.revision,
            "spec": record.spec.to_dict(),
            "status": record.status.to_dict(),
            "policy": record.policy.to_dict(),
            "handled_alerts": list(record.handled_alerts[-MAX_HANDLED_KEYS:]),
            "loop": record.loop,
            "strategy": strategy_to_dict(record.strategy),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": to_item(values)} if values else {}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise PreconditionFailed(f"deployment {record.status.deployment} changed meanwhile") from error
            raise translate(error, "write deployment") from error
