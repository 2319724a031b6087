"""The model registry on DynamoDB: one table, conditional writes, an append-only history.

Versions are numbered 1, 2, 3 ... per model with no gaps under concurrency: the version item,
the model's counter, a run reference (idempotency: one version per training run) and the
history entry are written in one transaction that is conditional on the counter not having
moved. A lost race re-reads and tries again.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from control.adapters.aws import aws_call, translate
from control.adapters.dynamodb_items import KEY_ATTRIBUTES, from_item, of_kind, to_item
from control.domain.registry import (
    Alias,
    HistoryEntry,
    Lineage,
    ModelSummary,
    ModelVersion,
    VersionStatus,
    check_transition,
    iso,
)
from control.domain.training_runs import RunRecord
from control.errors import NotFound, PreconditionFailed, TransientError

MAX_REGISTER_ATTEMPTS = 60


def _model_pk(name: str) -> str:
    return f"MODEL#{name}"


def _version_sk(version: int) -> str:
    return f"VERSION#{version:06d}"


class DynamoDbRegistry:
    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    # -- versions -----------------------------------------------------------------------------

    def register_version(
        self, model_name: str, lineage: Lineage, *, actor: str, now: datetime
    ) -> tuple[ModelVersion, bool]:
        """Register the run's model as the next version; (version, created).

        Registering the same training run again returns the version it already has.
        """
        for attempt in range(MAX_REGISTER_ATTEMPTS):
            existing = self._version_for_run(model_name, lineage.training_run_id)
            if existing is not None:
                return existing, False
            meta = self._get(_model_pk(model_name), "META")
            previous = int(meta["latest_version"]) if meta else 0
            version = previous + 1
            stamp = iso(now)
            try:
                self._transact(self._register_writes(model_name, version, previous, lineage, actor, stamp))
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise translate(error, "register model version") from error
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))
                continue
            return self.get_version(model_name, version), True
        raise TransientError(f"could not register a version of {model_name}: too much contention")

    def _register_writes(
        self, model_name: str, version: int, previous: int, lineage: Lineage, actor: str, stamp: str
    ) -> list[dict[str, Any]]:
        pk = _model_pk(model_name)
        counter_condition = "attribute_not_exists(pk)" if previous == 0 else "latest_version = :previous"
        counter_values = to_item(
            {":version": version, ":stamp": stamp, ":name": model_name, ":models": "MODELS", ":empty": {}}
        )
        if previous:
            counter_values |= to_item({":previous": previous})
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_item({"pk": pk, "sk": "META"}),
                    "UpdateExpression": (
                        "SET latest_version = :version, updated_at = :stamp, model_name = :name, "
                        "gsi1pk = :models, gsi1sk = :name, created_at = if_not_exists(created_at, :stamp), "
                        "aliases = if_not_exists(aliases, :empty)"
                    ),
                    "ConditionExpression": counter_condition,
                    "ExpressionAttributeValues": counter_values,
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": pk,
                            "sk": _version_sk(version),
                            "model_name": model_name,
                            "version": version,
                            "status": VersionStatus.REGISTERED.value,
                            "lineage": lineage.to_dict(),
                            "created_at": stamp,
                            "updated_at": stamp,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item({"pk": pk, "sk": f"RUNREF#{lineage.training_run_id}", "version": version}),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._history_put(
                HistoryEntry(
                    model_name=model_name,
                    at=stamp,
                    actor=actor,
                    action="registered",
                    reason=f"training run {lineage.training_run_id}",
                    version=version,
                    details={"artifact_sha256": lineage.artifact_sha256, "metrics": dict(lineage.metrics)},
                )
            ),
        ]

    def _version_for_run(self, model_name: str, run_id: str) -> ModelVersion | None:
        ref = self._get(_model_pk(model_name), f"RUNREF#{run_id}")
        return self.get_version(model_name, int(ref["version"])) if ref else None

    @aws_call("read model version")
    def get_version(self, model_name: str, version: int) -> ModelVersion:
        item = self._get(_model_pk(model_name), _version_sk(version))
        if item is None:
            raise NotFound(f"model {model_name!r} has no version {version}", field="version")
        meta = self._get(_model_pk(model_name), "META") or {}
        return self._version_from(item, meta.get("aliases", {}))

    @aws_call("list model versions")
    def list_versions(self, model_name: str) -> list[ModelVersion]:
        meta = self._get(_model_pk(model_name), "META")
        if meta is None:
            raise NotFound(f"no model named {model_name!r}", field="model")
        items = self._query(_model_pk(model_name), "VERSION#")
        return [self._version_from(item, meta.get("aliases", {})) for item in items]

    @aws_call("list models")
    def list_models(self) -> list[ModelSummary]:
        return [
            ModelSummary(
                model_name=item["model_name"],
                latest_version=int(item["latest_version"]),
                aliases={str(alias): int(version) for alias, version in (item.get("aliases") or {}).items()},
                created_at=item.get("created_at"),
                updated_at=item.get("updated_at"),
            )
            for item in of_kind(self._db, self._table, "MODELS")
        ]

    @staticmethod
    def _version_from(item: Mapping[str, Any], aliases: Mapping[str, int]) -> ModelVersion:
        version = int(item["version"])
        return ModelVersion(
            model_name=item["model_name"],
            version=version,
            status=VersionStatus(item["status"]),
            lineage=Lineage(**item["lineage"]),
            created_at=item["created_at"],
            updated_at=item["updated_at"],
            aliases=tuple(sorted(name for name, v in aliases.items() if int(v) == version)),
        )

    # -- status and aliases ---------------------------------------------------------------------

    def set_status(
        self, model_name: str, version: int, target: VersionStatus, *, actor: str, reason: str, now: datetime
    ) -> ModelVersion:
        current = self.get_version(model_name, version)
        check_transition(current.status, target)
        if current.status == target:
            return current
        stamp = iso(now)
        self._transact_or_conflict(
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
                        "UpdateExpression": "SET #status = :target, updated_at = :stamp",
                        "ConditionExpression": "#status = :current",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": to_item(
                            {":target": target.value, ":current": current.status.value, ":stamp": stamp}
                        ),
                    }
                },
                self._history_put(
                    HistoryEntry(
                        model_name=model_name,
                        at=stamp,
                        actor=actor,
                        action=f"status-{target.value}",
                        reason=reason,
                        version=version,
                        details={"from": current.status.value, "to": target.value},
                    )
                ),
            ],
            what=f"{model_name} v{version} changed status meanwhile",
        )
        return self.get_version(model_name, version)

    def set_alias(
        self,
        model_name: str,
        alias: Alias,
        version: int,
        *,
        actor: str,
        reason: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.get_version(model_name, version)  # NotFound for an unknown version
        meta = self._get(_model_pk(model_name), "META") or {}
        if int(meta.get("aliases", {}).get(alias.value, 0)) == version:
            return
        stamp = iso(now)
        self._transact_or_conflict(
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item({"pk": _model_pk(model_name), "sk": "META"}),
                        "UpdateExpression": "SET aliases.#alias = :version, updated_at = :stamp",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#alias": alias.value},
                        "ExpressionAttributeValues": to_item({":version": version, ":stamp": stamp}),
                    }
                },
                self._history_put(
                    HistoryEntry(
                        model_name=model_name,
                        at=stamp,
                        actor=actor,
                        action="alias-set",
                        reason=reason,
                        version=version,
                        details={"alias": alias.value, **(details or {})},
                    )
                ),
            ],
            what=f"alias {alias} of {model_name} changed meanwhile",
        )

    @aws_call("read model aliases")
    def aliases(self, model_name: str) -> dict[str, int]:
        meta = self._get(_model_pk(model_name), "META")
        if meta is None:
            raise NotFound(f"no model named {model_name!r}", field="model")
        return {k: int(v) for k, v in meta.get("aliases", {}).items()}

    # -- history ----------------------------------------------------------------------------------

    def record(self, entry: HistoryEntry, *, dedupe_key: str = "") -> bool:
        """Append to the history; with a `dedupe_key`, at most once per key. True if written."""
        writes = [self._history_put(entry)]
        if dedupe_key:
            writes.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item({"pk": _model_pk(entry.model_name), "sk": f"EVENTKEY#{dedupe_key}"}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            self._transact_or_conflict(writes, what="history entry exists")
        except PreconditionFailed:
            if dedupe_key:
                return False
            raise
        return True

    @aws_call("read model history")
    def history(self, model_name: str) -> list[HistoryEntry]:
        return [
            HistoryEntry(
                model_name=item["model_name"],
                at=item["at"],
                actor=item["actor"],
                action=item["action"],
                reason=item["reason"],
                version=item.get("version"),
                details=item.get("details", {}),
            )
            for item in self._query(_model_pk(model_name), "HISTORY#")
        ]

    def _history_put(self, entry: HistoryEntry) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": to_item(
                    {"pk": _model_pk(entry.model_name), "sk": f"HISTORY#{entry.at}#{uuid.uuid4().hex[:8]}"}
                    | entry.to_dict()
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    # -- training runs --------------------------------------------------------------------------

    @aws_call("record training run")
    def put_run(self, run_id: str, fields: Mapping[str, Any]) -> None:
        """Create the run record, or merge `fields` into it (last write wins per field)."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        self._db.update_item(
            TableName=self._table,
            Key=to_item({"pk": f"RUN#{run_id}", "sk": "RUN"}),
            UpdateExpression=f"SET {assignments}, gsi1pk = :runs, gsi1sk = if_not_exists(gsi1sk, :id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values | {":runs": "RUNS", ":id": run_id}),
        )

    @aws_call("read training run")
    def get_run(self, run_id: str) -> RunRecord:
        item = self._get(f"RUN#{run_id}", "RUN")
        if item is None:
            raise NotFound(f"no training run {run_id!r}", field="run_id")
        return RunRecord(run_id, {k: v for k, v in item.items() if k not in KEY_ATTRIBUTES})

    @aws_call("list training runs")
    def list_runs(self) -> list[RunRecord]:
        return [
            RunRecord(str(item["gsi1sk"]), {k: v for k, v in item.items() if k not in KEY_ATTRIBUTES})
            for item in of_kind(self._db, self._table, "RUNS")
        ]

    # -- plumbing -------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._db.get_item(TableName=self._table, Key=to_item({"pk": pk, "sk": sk}), ConsistentRead=True)
        return from_item(response["Item"]) if "Item" in response else None

    def _query(self, pk: str, sk_prefix: str) -> list[dict[str, Any]]:
        paginator = self._db.get_paginator("query")
        items: list[dict[str, Any]] = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=to_item({":pk": pk, ":prefix": sk_prefix}),
            ConsistentRead=True,
        ):
            items.extend(from_item(raw) for raw in page["Items"])
        return items

    def _transact(self, writes: list[dict[str, Any]]) -> None:
        self._db.transact_write_items(TransactItems=writes)

    def _transact_or_conflict(self, writes: list[dict[str, Any]], *, what: str) -> None:
        try:
            self._transact(writes)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                raise PreconditionFailed(what) from error
            raise translate(error, what) from error
