"""The embedded AWS stays flat in memory: moto's instance tracking must not keep the copies that
DynamoDB transactions make alive (a long-running platform would grow by a table per failed
conditional write)."""

from __future__ import annotations

import contextlib
import gc
from typing import Any

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
