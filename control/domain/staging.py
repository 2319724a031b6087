"""Staging a dataset from S3 onto the checkpoint file system (EFS): pure rules.

A staged dataset is a folder `datasets/<model>/<dataset-version>/<revision>/` holding the
dataset's files and, written last, `_staged.json` (what was copied: each object's version,
size and sha256). The revision is a digest of the exact S3 object versions, so a dataset
version overwritten in S3 stages beside the old copy instead of replacing files a run reads.
A folder without the marker, or whose marker names other object versions, is never reused.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from control.errors import StagingFailed

STAGED_ROOT = "datasets"
MARKER_FILE = "_staged.json"
TEMP_PREFIX = ".staging-"
MARKER_FORMAT = 1


@dataclass(frozen=True)
class SourceObject:
    """One S3 object of a dataset, pinned to the version (and ETag) the run was started for."""

    bucket: str
    key: str
    version_id: str = ""
    etag: str = ""
    size: int = -1  # -1: not known before the copy

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class StagedFile:
    name: str
    size: int
    sha256: str
    version_id: str
    etag: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StagingResult:
    folder: str  # relative to the file system's root
    files: list[StagedFile] = field(default_factory=list)
    reused: bool = False
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "files": [f.to_dict() for f in self.files],
            "bytes": self.bytes,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
        }


def revision(sources: Sequence[SourceObject]) -> str:
    """A digest of the exact object versions: equal only for the same bytes in S3."""
    digest = hashlib.sha256()
    for source in sorted(sources, key=lambda s: s.key):
        digest.update(f"{source.bucket}\n{source.key}\n{source.version_id}\n{source.etag}\n".encode())
    return digest.hexdigest()[:16]


def staged_folder(model_name: str, dataset_version: str, sources: Sequence[SourceObject]) -> str:
    """The folder, relative to the file system's root, that holds this dataset's staged copy."""
    if not sources:
        raise StagingFailed("a dataset to stage has at least one object")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise StagingFailed(f"two objects of the dataset share a file name: {sorted(names)}")
    return f"{STAGED_ROOT}/{model_name}/{dataset_version}/{revision(sources)}"


def check_copy(source: SourceObject, *, received: int, received_sha256: str, written_sha256: str) -> None:
    """The bytes on the file system are the bytes S3 sent, and as many as S3 said.

    Raises StagingFailed naming the object and what differs."""
    if source.size >= 0 and received != source.size:
        raise StagingFailed(f"{source.uri}: received {received} bytes; S3 reported {source.size}")
    if written_sha256 != received_sha256:
        raise StagingFailed(
            f"{source.uri}: the staged copy's sha256 {written_sha256} differs from the bytes received "
            f"({received_sha256}); the file system corrupted the write"
        )


def check_s3_checksum(source: SourceObject, checksum_sha256: str, received_sha256: str) -> None:
    """When S3 holds a full-object SHA-256 (uploaded with one, not multipart), it must match."""
    if not checksum_sha256 or "-" in checksum_sha256:  # composite (multipart) checksums are per part
        return
    expected = base64.b64decode(checksum_sha256).hex()
    if expected != received_sha256:
        raise StagingFailed(f"{source.uri}: sha256 {received_sha256} differs from S3's checksum {expected}")


def marker(sources: Sequence[SourceObject], files: Sequence[StagedFile], staged_at: str) -> dict[str, Any]:
    return {
        "format": MARKER_FORMAT,
        "revision": revision(sources),
        "sources": [{"uri": s.uri, "version_id": s.version_id, "etag": s.etag} for s in sources],
        "files": [f.to_dict() for f in files],
        "bytes": sum(f.size for f in files),
        "staged_at": staged_at,
    }


def marker_matches(existing: Any, sources: Sequence[SourceObject]) -> bool:
    """A staged copy is reused only when its marker names exactly these object versions."""
    if not isinstance(existing, Mapping) or existing.get("format") != MARKER_FORMAT:
        return False
    return existing.get("revision") == revision(sources) and len(existing.get("files") or []) == len(sources)
