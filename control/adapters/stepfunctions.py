"""Step Functions: start pipelines exactly once per name, read executions and their history."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from control.adapters.aws import aws_call, translate
from control.domain.pipelines import Started


class StepFunctions:
    def __init__(self, sfn_client: Any) -> None:
        self._sfn = sfn_client

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> Started:
        """Start `name` once. A name already used (running or finished) is a duplicate, not an error."""
        try:
            response = self._sfn.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return Started(self.execution_arn(state_machine_arn, name), duplicate=True)
            raise translate(error, "start pipeline") from error
        # Step Functions answers a repeated start with the same name and input with the same ARN.
        return Started(response["executionArn"], duplicate=False)

    @staticmethod
    def execution_arn(state_machine_arn: str, name: str) -> str:
        return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    @aws_call("describe execution")
    def describe(self, execution_arn: str) -> dict[str, Any]:
        response = self._sfn.describe_execution(executionArn=execution_arn)
        return {
            "execution_arn": response["executionArn"],
            "name": response.get("name", ""),
            "status": response["status"],
            "started_at": response["startDate"].isoformat(),
            "stopped_at": response["stopDate"].isoformat() if response.get("stopDate") else None,
            "error": response.get("error"),
            "cause": response.get("cause"),
            "output": json.loads(response["output"]) if response.get("output") else None,
        }

    @aws_call("read execution history")
    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self._sfn.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    @aws_call("list executions")
    def list_executions(self, state_machine_arn: str) -> list[dict[str, Any]]:
        paginator = self._sfn.get_paginator("list_executions")
        executions: list[dict[str, Any]] = []
        for page in paginator.paginate(stateMachineArn=state_machine_arn):
            executions.extend(page["executions"])
        return executions
