"""The embedded AWS stays flat in memory: moto's instance tracking must not keep the copies that
DynamoDB transactions make alive (a long-running platform would grow by a table per failed
conditional write). And its Step Functions interpreter does per execution only what differs
between executions: one parse per definition, one Lambda client per endpoint."""

from __future__ import annotations

import contextlib
import gc
import json
import time
import uuid
from typing import Any

import pytest
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def test_failed_transactions_leave_no_table_copies_behind(aws: Any) -> None:
    db = aws("dynamodb")
    db.create_table(
        TableName="leak-check",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        for i in range(100):
            item = {"pk": {"S": f"item-{i}"}, "m": {"M": {str(k): {"S": "v"} for k in range(20)}}}
            db.put_item(TableName="leak-check", Item=item)
        tables, values = _live(Table), _live(DynamoType)
        duplicate = {
            "Put": {
                "TableName": "leak-check",
                "Item": {"pk": {"S": "item-0"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        for _ in range(20):
            with contextlib.suppress(db.exceptions.TransactionCanceledException):
                db.transact_write_items(TransactItems=[duplicate])
        # Without the fix: +20 tables and ~+40,000 values (each failure copies the whole table).
        assert _live(Table) <= tables + 1
        assert _live(DynamoType) < values + 2_000
        assert len(list(Table.instances_tracked)) >= 1  # moto's dashboard still sees live tables
    finally:
        db.delete_table(TableName="leak-check")


def test_the_step_functions_interpreter_reuses_one_lambda_client_per_endpoint(aws: Any) -> None:
    """Building a boto3 client per Lambda task was most of the rollback loop's dispatch (~20 ms)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    first = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=None)
    again = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=object())
    assert first is again
    assert lambda_eval_utils.boto_client_for(region="eu-west-1", service="lambda") is not first


def test_each_definition_is_parsed_once_and_every_execution_runs_its_own_copy(
    aws: Any, endpoints: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.backend import execution_worker

    parse = execution_worker.AmazonStateLanguageParser.parse
    parses: list[str] = []

    def counting(definition: str, *args: Any, **kwargs: Any) -> Any:
        parses.append(definition)
        return parse(definition, *args, **kwargs)

    monkeypatch.setattr(execution_worker.AmazonStateLanguageParser, "parse", staticmethod(counting))
    sfn = aws("stepfunctions")
    marker = uuid.uuid4().hex
    definition = json.dumps(
        {
            "Comment": marker,
            "StartAt": "Double",
            "States": {"Double": {"Type": "Pass", "Parameters": {"twice.$": "States.MathAdd($.n, $.n)"}, "End": True}},
        }
    )
    role = aws("iam").get_role(RoleName="mlcp-local-states")["Role"]["Arn"]
    machine = sfn.create_state_machine(name=f"parse-{marker[:8]}", definition=definition, roleArn=role)
    outputs = []
    for n in (1, 2, 3):
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"n{n}", input=json.dumps({"n": n}))
        deadline = time.monotonic() + 30
        while (described := sfn.describe_execution(executionArn=arn["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert described["status"] == "SUCCEEDED", described
        outputs.append(json.loads(described["output"])["twice"])
    assert outputs == [2, 4, 6]
    # Once when created (moto validates it), once for the three executions (not once each).
    assert sum(marker in d for d in parses) == 2
