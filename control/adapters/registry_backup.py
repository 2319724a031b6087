"""Logical backup of the registry table and the artifacts: export, import, copy, checksum.

The export is one JSON line per item in DynamoDB's own wire format (lossless: numbers, sets and
binary stay what they were), written while it is scanned, so memory stays flat however large
the table is. `manifest.json` beside it records when the scan started (the backup's snapshot
time, its RPO reference), how many items of each kind it holds and the file's sha256.

A scan is not a snapshot: a write during the scan can leave a version without its history
entry in the export. The export therefore checks the registry rules on what it wrote and scans
again (up to `attempts` times) while they fail; in AWS, point-in-time recovery and
ExportTableToPointInTime give a true snapshot, and this logical path is what the drill can also
run locally.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from control.adapters.aws import aws_call, translate
from control.adapters.dynamodb_items import from_item
from control.domain.recovery import Problem, verify_registry
from control.errors import Conflict, InvalidInput, NotFound, PreconditionFailed

ITEMS_FILE = "registry.jsonl"
MANIFEST_FILE = "manifest.json"
BATCH = 25  # BatchWriteItem's limit
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupManifest:
    table: str
    snapshot_at: str  # when the scan that produced the file started (ISO UTC)
    finished_at: str
    items: int
    kinds: dict[str, int]
    sha256: str
    attempts: int

    @classmethod
    def read(cls, folder: Path) -> BackupManifest:
        path = folder / MANIFEST_FILE
        if not path.is_file():
            raise NotFound(f"{path} does not exist: not a registry backup folder", field="backup")
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError) as error:
            raise InvalidInput(f"{path} is not a backup manifest: {error}", field="backup") from error


def _kind(wire: dict[str, Any]) -> str:
    pk, sk = wire["pk"]["S"], wire["sk"]["S"]
    prefix = pk.split("#", 1)[0]
    return f"{prefix}/{sk.split('#', 1)[0]}" if prefix == "MODEL" else prefix


@aws_call("scan the registry table")
def scan(db: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every item in wire format, consistently read, page by page."""
    for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from page["Items"]


def plain_items(db: Any, table: str) -> list[dict[str, Any]]:
    return [from_item(item) for item in scan(db, table)]


def read_items(folder: Path) -> Iterator[dict[str, Any]]:
    """The backup's items in wire format; refuses a file whose sha256 is not the manifest's."""
    manifest = BackupManifest.read(folder)
    path = folder / ITEMS_FILE
    if not path.is_file():
        raise NotFound(f"{path} is missing from the backup", field="backup")
    if file_sha256(path) != manifest.sha256:
        raise PreconditionFailed(f"{path} does not match the sha256 in {MANIFEST_FILE}: the backup is damaged")
    with path.open() as lines:
        for line in lines:
            yield json.loads(line)


def export_table(db: Any, table: str, folder: Path, *, attempts: int = 3, now: Any = None) -> BackupManifest:
    """Scan `table` into `folder`; scan again while the export breaks the registry rules."""
    clock = now or (lambda: datetime.now(UTC))
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[Problem] = []
    for attempt in range(1, attempts + 1):
        started = clock()
        kinds: Counter[str] = Counter()
        partial = folder / f".{ITEMS_FILE}.partial"
        digest = hashlib.sha256()
        with partial.open("w") as out:
            for wire in scan(db, table):
                line = json.dumps(wire, sort_keys=True, separators=(",", ":")) + "\n"
                out.write(line)
                digest.update(line.encode())
                kinds[_kind(wire)] += 1
        problems = verify_registry([from_item(item) for item in _lines(partial)])
        if problems:
            continue
        os.replace(partial, folder / ITEMS_FILE)
        manifest = BackupManifest(
            table=table,
            snapshot_at=started.isoformat(),
            finished_at=clock().isoformat(),
            items=sum(kinds.values()),
            kinds=dict(sorted(kinds.items())),
            sha256=digest.hexdigest(),
            attempts=attempt,
        )
        (folder / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        return manifest
    raise Conflict(
        f"the export of {table} broke the registry rules {attempts} times (writes during the scan, or a damaged "
        f"table): " + "; ".join(map(str, problems[:5])),
        field="table",
    )


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as lines:
        for line in lines:
            yield json.loads(line)


def import_table(db: Any, table: str, folder: Path) -> int:
    """Write the backup into `table`, which must exist and be empty; the number of items written."""
    try:
        if db.scan(TableName=table, Limit=1, ConsistentRead=True)["Items"]:
            raise Conflict(f"table {table} is not empty: restore into a new, empty table", field="table")
    except ClientError as error:
        raise translate(error, f"read table {table}") from error
    written = 0
    batch: list[dict[str, Any]] = []
    for wire in read_items(folder):
        batch.append({"PutRequest": {"Item": wire}})
        if len(batch) == BATCH:
            written += _write(db, table, batch)
            batch = []
    if batch:
        written += _write(db, table, batch)
    return written


def _write(db: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending = {table: batch}
    for _ in range(20):
        try:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        except ClientError as error:
            raise translate(error, f"write to {table}") from error
        if not pending:
            return len(batch)
    raise PreconditionFailed(f"{table} kept refusing {len(pending[table])} items (throttled): import again")


# -- artifacts ----------------------------------------------------------------------------------------


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidInput(f"not an s3://bucket/key URI: {uri!r}", field="uri")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


@aws_call("copy the artifacts")
def copy_prefix(source: Any, source_bucket: str, target: Any, target_bucket: str, prefix: str) -> tuple[int, int]:
    """Copy the current version of every object under `prefix` (objects, bytes), streamed."""
    objects = size = 0
    for page in source.get_paginator("list_objects_v2").paginate(Bucket=source_bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            body = source.get_object(Bucket=source_bucket, Key=entry["Key"])["Body"]
            target.upload_fileobj(body, target_bucket, entry["Key"])
            objects += 1
            size += int(entry["Size"])
    return objects, size


def object_sha256(s3: Any, bucket: str, key: str) -> str | None:
    """The object's sha256, streamed; None when it does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise translate(error, f"read s3://{bucket}/{key}") from error
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
