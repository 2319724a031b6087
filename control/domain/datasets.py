"""Dataset layout in S3, S3 event parsing and deterministic run names: pure rules."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from control.domain.names import check_name
from control.errors import InvalidInput, PayloadTooLarge

DATASETS_PREFIX = "datasets/"
SINGLE_FILE = "data.csv"
MANIFEST_FILE = "_manifest.json"
# Staging streams it to EFS in 8 MiB pieces and each rank reads only its shard, so the bound is a
# rank's memory with one worker (the job's default 8 GiB); workloads/training/data.py's MAX_BYTES.
MAX_DATASET_BYTES = 2 * 1024 * 1024 * 1024
MAX_KEY_LENGTH = 1024
RUN_ID_MAX = 50  # the MPIJob name; its launcher Service must stay within a 63-character label


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata in the object store (S3)."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str


@dataclass(frozen=True)
class DatasetObject:
    """One S3 object that completes a dataset (a single data.csv or a _manifest.json)."""

    bucket: str
    key: str
    model_name: str
    dataset_version: str
    etag: str = ""
    version_id: str = ""
    size: int = 0

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_manifest(self) -> bool:
        return self.key.endswith("/" + MANIFEST_FILE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "bucket": self.bucket,
            "key": self.key,
            "model_name": self.model_name,
            "dataset_version": self.dataset_version,
            "etag": self.etag,
            "version_id": self.version_id,
            "size": self.size,
        }


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str
    sequencer: str


def parse_dataset_key(bucket: str, key: str) -> DatasetObject | None:
    """The dataset an object completes; None for other objects of a dataset (parts).

    Raises InvalidInput for keys outside `datasets/<model>/<dataset-version>/<file>`.
    """
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"object key is longer than {MAX_KEY_LENGTH} characters", field="key")
    if not key.startswith(DATASETS_PREFIX):
        raise InvalidInput(f"object key {key!r} is outside the {DATASETS_PREFIX!r} prefix", field="key")
    parts = key[len(DATASETS_PREFIX) :].split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(f"object key {key!r} does not follow datasets/<model>/<dataset-version>/<file>", field="key")
    model, version, filename = parts
    check_name(model, "model")
    check_name(version, "dataset_version")
    if filename in ("..", ".") or filename.startswith(".."):
        raise InvalidInput(f"object key {key!r} has a relative path segment", field="key")
    if filename not in (SINGLE_FILE, MANIFEST_FILE):
        return None
    return DatasetObject(bucket=bucket, key=key, model_name=model, dataset_version=version)


def parse_dataset_uri(uri: Any) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidInput("dataset_uri must be an s3:// URI", field="dataset_uri")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise InvalidInput("dataset_uri must be s3://<bucket>/<key>", field="dataset_uri")
    return bucket, key


def check_dataset_size(size: int) -> None:
    if size <= 0:
        raise InvalidInput("the dataset object is empty", field="size")
    if size > MAX_DATASET_BYTES:
        raise PayloadTooLarge(f"the dataset object has {size} bytes; the limit is {MAX_DATASET_BYTES}", field="size")


def parse_s3_event(event: Any) -> list[ObjectCreated]:
    """S3 notification → created objects. An `s3:TestEvent` yields no objects.

    Raises InvalidInput naming the first malformed field.
    """
    if not isinstance(event, Mapping):
        raise InvalidInput("the S3 event must be a JSON object", field="event")
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise InvalidInput("the S3 event has no Records", field="Records")
    created = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, Mapping):
            raise InvalidInput(f"{where} must be an object", field=where)
        name = record.get("eventName")
        if not isinstance(name, str):
            raise InvalidInput(f"{where}.eventName is missing", field=f"{where}.eventName")
        if not name.startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3")
        bucket_info = s3.get("bucket") if isinstance(s3, Mapping) else None
        bucket = bucket_info.get("name") if isinstance(bucket_info, Mapping) else None
        obj = s3.get("object") if isinstance(s3, Mapping) else None
        if not isinstance(bucket, str) or not bucket:
            raise InvalidInput(f"{where}.s3.bucket.name is missing", field=f"{where}.s3.bucket.name")
        if not isinstance(obj, Mapping) or not isinstance(obj.get("key"), str) or not obj["key"]:
            raise InvalidInput(f"{where}.s3.object.key is missing", field=f"{where}.s3.object.key")
        size = obj.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int):
            raise InvalidInput(f"{where}.s3.object.size must be an integer", field=f"{where}.s3.object.size")
        created.append(
            ObjectCreated(
                bucket=bucket,
                key=unquote_plus(obj["key"]),
                size=size,
                etag=str(obj.get("eTag", "")).strip('"'),
                version_id=str(obj.get("versionId") or ""),
                sequencer=str(obj.get("sequencer", "")),
            )
        )
    return created


def run_id_for(model_name: str, dataset_version: str, content: Mapping[str, Any]) -> str:
    """Deterministic run id (= Step Functions execution name = MPIJob name).

    The same model, dataset version and content (object ETag/version, hyperparameters, gate)
    always give the same id, so Step Functions' name uniqueness de-duplicates starts.
    """
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    stem = f"{model_name}-{dataset_version}"[: RUN_ID_MAX - 13].rstrip("-")
    return f"{stem}-{digest[:12]}"
