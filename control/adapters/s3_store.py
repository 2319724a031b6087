"""Objects in S3: datasets to check, artifacts to read and hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from control.adapters.aws import aws_call
from control.domain.datasets import ObjectInfo
from control.errors import InvalidInput

CHUNK = 1024 * 1024


class S3Store:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    @aws_call("read object metadata")
    def head(self, bucket: str, key: str, version_id: str = "") -> ObjectInfo:
        response = self._s3.head_object(Bucket=bucket, Key=key, **_version(version_id))
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(response["ContentLength"]),
            etag=response.get("ETag", "").strip('"'),
            version_id=response.get("VersionId") or "",
        )

    @aws_call("read object")
    def read_bytes(self, bucket: str, key: str, max_bytes: int | None = None, version_id: str = "") -> bytes:
        extra = {"Range": f"bytes=0-{max_bytes - 1}"} if max_bytes else {}
        return bytes(self._s3.get_object(Bucket=bucket, Key=key, **extra, **_version(version_id))["Body"].read())

    def read_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024, version_id: str = "") -> Any:
        raw = self.read_bytes(bucket, key, version_id=version_id)
        if len(raw) > max_bytes:
            raise InvalidInput(f"s3://{bucket}/{key} is larger than {max_bytes} bytes", field="key")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidInput(f"s3://{bucket}/{key} is not valid JSON: {error}", field="key") from error

    @aws_call("hash object")
    def sha256(self, bucket: str, key: str) -> str:
        digest = hashlib.sha256()
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
        return digest.hexdigest()

    @aws_call("write object")
    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    @aws_call("list objects")
    def exists(self, bucket: str, key: str) -> bool:
        response = self._s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in response.get("Contents", []))


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise InvalidInput(f"{uri!r} is not an s3:// URI", field="uri")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _version(version_id: str) -> dict[str, str]:
    """One object version (an S3 event's versionId), or the latest when empty."""
    return {"VersionId": version_id} if version_id else {}
