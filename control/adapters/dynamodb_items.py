"""The one table's item codec, shared by the registry and the deployment store: Python values to
DynamoDB attribute values and back (floats as Decimal, NaN as a string), and the gsi1 listing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_dynamo_safe(v)) for k, v in values.items() if v is not None}


def _dynamo_safe(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value else "NaN"
    if isinstance(value, Mapping):
        return {k: _dynamo_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dynamo_safe(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def of_kind(db: Any, table: str, kind: str) -> Iterator[dict[str, Any]]:
    """Every item listed under `kind` in the gsi1 index (MODELS, RUNS, DEPLOYMENTS), all pages."""
    for page in db.get_paginator("query").paginate(
        TableName=table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :kind",
        ExpressionAttributeValues=to_item({":kind": kind}),
    ):
        yield from (from_item(raw) for raw in page["Items"])
