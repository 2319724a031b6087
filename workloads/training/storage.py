"""Reads and writes whole objects at an `s3://bucket/key` URI or a local path.

boto3 is imported and its client built only when an s3:// URI is used; the client honours
`AWS_ENDPOINT_URL` (boto3 >= 1.28), so the same code talks to moto's server locally.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads.training.errors import ObjectNotFound, StorageError

__all__ = ["ObjectNotFound", "Storage", "StorageError", "atomic_write", "is_s3", "join", "parent", "split_s3"]

NOT_FOUND_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"{uri}: not an s3://bucket/key URI")
    return bucket, key


def join(base: str, name: str) -> str:
    """Joins a file name onto a folder URI or path (s3:// or local)."""
    if is_s3(base):
        return base.rstrip("/") + "/" + name
    return str(Path(base) / name)


def parent(uri: str) -> str:
    if is_s3(uri):
        return uri.rsplit("/", 1)[0]
    return str(Path(uri).parent)


@dataclass
class Storage:
    """Whole-object reads and writes; `s3_client` may be injected (tests), else built lazily.

    `pinned` maps s3:// URIs to the object version to read (the version the S3 event named), so
    an object overwritten after the event still trains on the bytes the run was started for."""

    s3_client: Any = None
    pinned: Mapping[str, str] = field(default_factory=dict)
    _client: Any = field(default=None, init=False, repr=False)

    def _version(self, uri: str) -> dict[str, str]:
        version = self.pinned.get(uri)
        return {"VersionId": version} if version else {}

    def _s3(self) -> Any:
        if self.s3_client is not None:
            return self.s3_client
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def size(self, uri: str) -> int:
        try:
            if is_s3(uri):
                bucket, key = split_s3(uri)
                return int(self._s3().head_object(Bucket=bucket, Key=key, **self._version(uri))["ContentLength"])
            path = Path(uri)
            if not path.is_file():
                raise FileNotFoundError(uri)
            return path.stat().st_size
        except StorageError:
            raise
        except Exception as exc:
            raise _error(uri, "read", exc) from exc

    def exists(self, uri: str) -> bool:
        """False only when the object is missing; access and network errors are raised."""
        try:
            self.size(uri)
        except ObjectNotFound:
            return False
        return True

    def read_bytes(self, uri: str) -> bytes:
        try:
            if is_s3(uri):
                bucket, key = split_s3(uri)
                return self._s3().get_object(Bucket=bucket, Key=key, **self._version(uri))["Body"].read()
            return Path(uri).read_bytes()
        except StorageError:
            raise
        except Exception as exc:
            raise _error(uri, "read", exc) from exc

    def read_range(self, uri: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object (fewer at its end): a ranged GET, or a seek."""
        if end <= start:
            return b""
        try:
            if is_s3(uri):
                bucket, key = split_s3(uri)
                response = self._s3().get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **self._version(uri)
                )
                return bytes(response["Body"].read())
            with Path(uri).open("rb") as handle:
                handle.seek(start)
                return handle.read(end - start)
        except StorageError:
            raise
        except Exception as exc:
            raise _error(uri, "read", exc) from exc

    def write_bytes(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Writes the whole object; a local file is replaced atomically (temp file + rename)."""
        try:
            if is_s3(uri):
                bucket, key = split_s3(uri)
                self._s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
            else:
                atomic_write(Path(uri), data)
        except StorageError:
            raise
        except Exception as exc:
            raise _error(uri, "written", exc) from exc


def atomic_write(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a partial write (also on EFS/NFS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600: the artifact and checkpoints are read by others
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _error(uri: str, action: str, exc: Exception) -> StorageError:
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    if isinstance(exc, FileNotFoundError) or code in NOT_FOUND_CODES:
        return ObjectNotFound(f"{uri}: does not exist")
    return StorageError(f"{uri}: cannot be {action} ({_reason(exc)})")


def _reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    return f"{type(exc).__name__}: {exc}"
