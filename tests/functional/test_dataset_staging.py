"""Staging S3 → the checkpoint file system: exact version, verified, atomic, idempotent, concurrent-safe."""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import sys
import threading
import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from control.adapters.efs_staging import EfsDatasetStager
from control.domain.staging import MARKER_FILE, TEMP_PREFIX, SourceObject, staged_folder
from control.errors import StagingFailed
from control.local.processes import free_port

BUCKET = "data"  # each test's own bucket (the s3 fixture), named from this
KEY = "datasets/iris/v1/data.csv"
NOW = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def moto_url():
    # A server, not mock_aws: mock_aws resets moto's process-wide state when it ends, and the
    # session's embedded platform (the same process) would lose its tables and buckets.
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_url, monkeypatch):
    bucket = f"data-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(sys.modules[__name__], "BUCKET", bucket)
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    yield client


def versioned(s3) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def put(s3, body: bytes, key: str = KEY) -> SourceObject:
    response = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return SourceObject(BUCKET, key, response.get("VersionId") or "", response["ETag"].strip('"'), len(body))


def stage(root: Path, s3, sources: list[SourceObject], **kwargs):
    folder = staged_folder("iris", "v1", sources)
    return EfsDatasetStager(s3, root, **kwargs).stage(folder, sources, NOW)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(f"{TEMP_PREFIX}*"))


def test_stages_the_version_the_event_named_even_after_an_overwrite(tmp_path, s3):
    versioned(s3)
    first = put(s3, b"a,label\n1,0\n" * 1000)
    put(s3, b"a,label\n9,1\n" * 1000)  # a new version overwrote it after the event

    result = stage(tmp_path, s3, [first])

    staged = tmp_path / result.folder / "data.csv"
    assert staged.read_bytes() == b"a,label\n1,0\n" * 1000
    assert result.files[0].sha256 == hashlib.sha256(staged.read_bytes()).hexdigest()
    assert result.files[0].version_id == first.version_id and not result.reused
    marker = json.loads((tmp_path / result.folder / MARKER_FILE).read_text())
    assert marker["files"][0]["size"] == first.size and marker["sources"][0]["version_id"] == first.version_id


def test_without_versioning_an_overwrite_since_the_event_fails_with_that_reason(tmp_path, s3):
    first = put(s3, b"a,label\n1,0\n")
    put(s3, b"a,label\n2,1\n")

    with pytest.raises(StagingFailed, match="changed after the event"):
        stage(tmp_path, s3, [first])
    assert not list((tmp_path / "datasets").rglob("data.csv")), "nothing half staged"
    assert leftovers(tmp_path) == []


def test_a_deleted_version_fails_the_staging(tmp_path, s3):
    versioned(s3)
    first = put(s3, b"a,label\n1,0\n")
    s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=first.version_id)

    with pytest.raises(StagingFailed, match=f"version {first.version_id}"):
        stage(tmp_path, s3, [first])


def test_a_second_run_of_the_same_version_reuses_the_staged_copy(tmp_path, s3):
    versioned(s3)
    source = put(s3, b"a,label\n1,0\n" * 100)
    first = stage(tmp_path, s3, [source])
    staged = tmp_path / first.folder / "data.csv"
    written_at = staged.stat().st_mtime_ns

    again = stage(tmp_path, s3, [source])

    assert again.reused and again.files == first.files and again.folder == first.folder
    assert staged.stat().st_mtime_ns == written_at


def test_a_new_version_stages_beside_the_old_copy_never_over_it(tmp_path, s3):
    versioned(s3)
    old = stage(tmp_path, s3, [put(s3, b"a,label\n1,0\n")])
    new = stage(tmp_path, s3, [put(s3, b"a,label\n2,1\n")])

    assert new.folder != old.folder and not new.reused
    assert (tmp_path / old.folder / "data.csv").read_bytes() == b"a,label\n1,0\n"


def test_concurrent_stagings_of_one_version_copy_once_and_agree(tmp_path, s3):
    versioned(s3)
    source = put(s3, b"a,label\n1,0\n" * 50_000)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(stage(tmp_path, s3, [source], chunk_bytes=64 * 1024))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r.reused for r in results) == [False, True, True, True]
    assert len({tuple(r.files) for r in results}) == 1
    assert leftovers(tmp_path) == []


def test_a_multipart_object_streams_in_bounded_chunks_and_verifies(tmp_path, s3):
    versioned(s3)
    part = 5 * 1024 * 1024
    body = bytes(range(256)) * (2 * part // 256) + b"tail"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)
    parts = []
    for number, start in enumerate(range(0, len(body), part), start=1):
        answer = s3.upload_part(
            Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"], PartNumber=number, Body=body[start : start + part]
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    source = SourceObject(BUCKET, KEY, done["VersionId"], done["ETag"].strip('"'), len(body))

    result = stage(tmp_path, s3, [source], chunk_bytes=1024 * 1024)

    assert result.files[0].sha256 == hashlib.sha256(body).hexdigest()
    assert result.bytes == len(body)


def test_a_size_that_differs_from_what_the_event_reported_fails(tmp_path, s3):
    versioned(s3)
    source = put(s3, b"a,label\n1,0\n")
    wrong = SourceObject(source.bucket, source.key, source.version_id, source.etag, source.size + 1)

    with pytest.raises(StagingFailed, match="S3 reported"):
        stage(tmp_path, s3, [wrong])
    assert leftovers(tmp_path) == []


def test_a_full_file_system_fails_with_a_clear_cause_and_leaves_nothing_to_reuse(tmp_path, s3):
    versioned(s3)
    source = put(s3, b"a,label\n1,0\n" * 100_000)  # 1.2 MB; the file size limit below is 256 KiB
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
    try:
        with pytest.raises(StagingFailed, match=r"refused a file this large \(EFBIG"):
            stage(tmp_path, s3, [source], chunk_bytes=64 * 1024)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)

    assert leftovers(tmp_path) == []
    assert not list(tmp_path.rglob(MARKER_FILE))
    retried = stage(tmp_path, s3, [source])  # room again: the retry stages it whole
    assert not retried.reused and retried.bytes == source.size


def test_an_unwritable_file_system_fails_with_a_clear_cause(tmp_path, s3):
    versioned(s3)
    source = put(s3, b"a,label\n1,0\n")
    blocker = tmp_path / "efs"
    blocker.write_text("a file where the mount's folder should be")

    with pytest.raises(StagingFailed, match="cannot stage the dataset under"):
        stage(blocker, s3, [source])
