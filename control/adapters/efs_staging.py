"""Copies a dataset's S3 objects onto the checkpoint file system (EFS on AWS, a folder locally).

Write, verify, rename: every object is streamed (a fixed-size buffer, never the whole object)
into a private temporary folder next to the target while its sha256 is computed, fsynced, read
back and hashed again; the marker `_staged.json` is written last; one `rename` then publishes the
folder. A crash or a full file system leaves only a temporary folder that nothing reads (the
retention sweep removes it). Concurrent stagers of the same revision take turns on a lock file
(EFS supports NFSv4 locks); the loser of a race finds the marker and reuses the copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from control.adapters.aws import translate
from control.domain.staging import (
    MARKER_FILE,
    TEMP_PREFIX,
    SourceObject,
    StagedFile,
    StagingResult,
    check_copy,
    check_s3_checksum,
    marker,
    marker_matches,
)
from control.errors import StagingFailed

CHUNK_BYTES = 8 * 1024 * 1024
# S3 answers these when the pinned version or ETag is not (or no longer) what is there.
CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
GONE_CODES = frozenset({"NoSuchVersion", "NoSuchKey", "404", "InvalidArgument"})


class EfsDatasetStager:
    def __init__(self, s3_client: Any, root: Path, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._s3 = s3_client
        self.root = Path(root)
        self.chunk_bytes = chunk_bytes

    def stage(self, folder: str, sources: Sequence[SourceObject], staged_at: str) -> StagingResult:
        started = time.monotonic()
        target = self.root / folder
        existing = self.staged(folder, sources)
        if existing is not None:
            return StagingResult(folder, existing, reused=True, seconds=time.monotonic() - started)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with _locked(target.parent / f".{target.name}.lock"):
                existing = self.staged(folder, sources)  # staged by the one we waited for
                if existing is not None:
                    return StagingResult(folder, existing, reused=True, seconds=time.monotonic() - started)
                files = self._copy_and_publish(target, sources, staged_at)
        except OSError as error:
            raise _file_system_error(self.root, error) from error
        return StagingResult(folder, files, reused=False, seconds=time.monotonic() - started)

    def staged(self, folder: str, sources: Sequence[SourceObject]) -> list[StagedFile] | None:
        """The files of a complete staged copy of exactly these versions, else None."""
        try:
            existing = json.loads((self.root / folder / MARKER_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not marker_matches(existing, sources):
            return None
        return [StagedFile(**item) for item in existing["files"]]

    def _copy_and_publish(self, target: Path, sources: Sequence[SourceObject], staged_at: str) -> list[StagedFile]:
        temp = target.parent / f"{TEMP_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            files = [self._copy(source, temp / source.name) for source in sources]
            _write_durably(temp / MARKER_FILE, json.dumps(marker(sources, files, staged_at), indent=2).encode())
            _fsync_folder(temp)
            os.rename(temp, target)  # publishes the whole folder at once
            _fsync_folder(target.parent)
            return files
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    def _copy(self, source: SourceObject, path: Path) -> StagedFile:
        response = self._get(source)
        reported = int(response["ContentLength"])
        version = response.get("VersionId") or ""
        if source.version_id and version and version != source.version_id:
            raise StagingFailed(f"{source.uri}: S3 sent version {version}, not the version {source.version_id} named")
        received, digest = 0, hashlib.sha256()
        body = response["Body"]
        try:
            with path.open("wb") as handle:
                for chunk in iter(lambda: body.read(self.chunk_bytes), b""):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except (ClientError, BotoCoreError) as error:
            raise translate(error, f"read {source.uri}") from error
        finally:
            body.close()
        received_sha256 = digest.hexdigest()
        if received != reported:
            raise StagingFailed(f"{source.uri}: the download ended after {received} of {reported} bytes")
        check_copy(source, received=received, received_sha256=received_sha256, written_sha256=self._sha256(path))
        check_s3_checksum(source, str(response.get("ChecksumSHA256") or ""), received_sha256)
        etag = str(response.get("ETag", "")).strip('"')
        return StagedFile(source.name, received, received_sha256, version or source.version_id, etag)

    def _get(self, source: SourceObject) -> Any:
        # Pinned to the version the event named; without versioning, to its ETag: an overwrite
        # since the event fails here instead of staging other bytes.
        pin = {"VersionId": source.version_id} if source.version_id else {}
        if not pin and source.etag:
            pin = {"IfMatch": f'"{source.etag}"'}
        try:
            return self._s3.get_object(Bucket=source.bucket, Key=source.key, ChecksumMode="ENABLED", **pin)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in CHANGED_CODES:
                raise StagingFailed(
                    f"{source.uri} changed after the event (its ETag is no longer {source.etag}); "
                    "the run stages only the version it was started for"
                ) from error
            if code in GONE_CODES and source.version_id:
                raise StagingFailed(f"{source.uri}: version {source.version_id} no longer exists ({code})") from error
            raise translate(error, f"read {source.uri}") from error
        except BotoCoreError as error:
            raise translate(error, f"read {source.uri}") from error

    def _sha256(self, path: Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(self.chunk_bytes), b""):
                digest.update(chunk)
        return digest.hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _file_system_error(root: Path, error: OSError) -> StagingFailed:
    name = errno.errorcode.get(error.errno or 0, "") if error.errno else ""
    reason = error.strerror or str(error)
    hint = {
        errno.ENOSPC: "the file system is full",
        errno.EDQUOT: "the file system's quota is used up",
        errno.EFBIG: "the file system refused a file this large",
        errno.EACCES: "the file system is not writable by this process",
        errno.EROFS: "the file system is read-only",
    }.get(error.errno or 0, "the file system failed")
    return StagingFailed(f"cannot stage the dataset under {root}: {hint} ({name or 'error'}: {reason})")
