"""Registry backup and the disaster-recovery drill's checks, against the embedded AWS.

Each test has its own source and target (table and buckets in the session's embedded AWS); the
drill restores the source into the target and must fail loudly on a missing artifact, a sha256
mismatch or a history gap. The whole drill, with a second platform and a redeploy, is in
tests/e2e/test_dr_drill.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from control.adapters.registry_backup import (
    ITEMS_FILE,
    MANIFEST_FILE,
    export_table,
    file_sha256,
    import_table,
    plain_items,
)
from control.domain.recovery import ProblemKind
from control.dr import Drill, DrillFailed, Environment
from control.errors import Conflict, PreconditionFailed
from control.local.registry_seed import seed
from control.local.resources import registry_table_definition
from tests.support.inference_artifact import CLASSES, FEATURES, model_bytes

SAMPLE = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


def stores(aws: Any, endpoints: dict[str, Any], tmp_path: Path, name: str) -> Environment:
    """A table and two buckets of their own, as an endpoints file describes a platform."""
    prefix = f"{name}-{uuid.uuid4().hex[:8]}"
    aws("dynamodb").create_table(**registry_table_definition(f"{prefix}-registry"))
    for bucket in (f"{prefix}-artifacts", f"{prefix}-data"):
        aws("s3").create_bucket(Bucket=bucket)
        aws("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    described = {
        "aws_endpoint_url": endpoints["aws_endpoint_url"],
        "region": endpoints["region"],
        "api_url": endpoints["api_url"],
        "registry_table": f"{prefix}-registry",
        "artifacts_bucket": f"{prefix}-artifacts",
        "data_bucket": f"{prefix}-data",
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(described))
    return Environment.read(path)


@pytest.fixture
def source(aws, endpoints, tmp_path) -> Environment:
    environment = stores(aws, endpoints, tmp_path, "drsrc")
    seed(
        environment.endpoints,
        models=["churn", "fraud"],
        versions=3,
        model_pt=model_bytes(seed=1),
        feature_names=FEATURES,
        classes=CLASSES,
        sample_rows=SAMPLE,
    )
    return environment


@pytest.fixture
def target(aws, endpoints, tmp_path) -> Environment:
    return stores(aws, endpoints, tmp_path, "drdst")


def drill_problems(tmp_path: Path, source: Environment, target: Environment, backup: Path | None = None) -> set[str]:
    with pytest.raises(DrillFailed) as failed:
        Drill(tmp_path / "drill").run(source, backup, target)
    assert failed.value.report.problems and not failed.value.report.redeployed
    return {problem.kind for problem in failed.value.problems}


def test_export_then_import_into_an_empty_table_restores_every_item(source, target, tmp_path):
    manifest = export_table(source.aws("dynamodb"), source.table, tmp_path / "backup")
    assert manifest.kinds == {"MODEL/HISTORY": 12, "MODEL/META": 2, "MODEL/RUNREF": 6, "MODEL/VERSION": 6, "RUN": 6}
    assert import_table(target.aws("dynamodb"), target.table, tmp_path / "backup") == manifest.items == 32
    assert sorted(plain_items(target.aws("dynamodb"), target.table), key=lambda i: (i["pk"], i["sk"])) == sorted(
        plain_items(source.aws("dynamodb"), source.table), key=lambda i: (i["pk"], i["sk"])
    )
    with pytest.raises(Conflict, match="not empty"):
        import_table(target.aws("dynamodb"), target.table, tmp_path / "backup")


def test_a_damaged_backup_file_is_refused(source, target, tmp_path):
    export_table(source.aws("dynamodb"), source.table, tmp_path / "backup")
    items = tmp_path / "backup" / ITEMS_FILE
    items.write_text("\n".join(items.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(PreconditionFailed, match="damaged"):
        import_table(target.aws("dynamodb"), target.table, tmp_path / "backup")


def test_the_restore_proves_itself_before_any_redeploy(source, target, tmp_path):
    report = Drill(tmp_path / "drill").run(source, None, target)
    assert report.problems == [] and report.versions_verified == 6 and report.items_restored == 32
    assert report.objects_copied == 6 * 3 + 6  # three files a run folder, one dataset a version
    assert report.lost_changes == 0 and report.redeployed == []


def test_a_missing_artifact_fails_the_drill(source, target, tmp_path):
    key = next(
        entry["Key"]
        for entry in source.aws("s3").list_objects_v2(Bucket=source.endpoints["artifacts_bucket"])["Contents"]
        if entry["Key"].endswith("model.pt")
    )
    source.aws("s3").delete_object(Bucket=source.endpoints["artifacts_bucket"], Key=key)
    assert drill_problems(tmp_path, source, target) == {ProblemKind.MISSING_ARTIFACT}


def test_a_sha256_mismatch_fails_the_drill(source, target, tmp_path):
    key = next(
        entry["Key"]
        for entry in source.aws("s3").list_objects_v2(Bucket=source.endpoints["artifacts_bucket"])["Contents"]
        if entry["Key"].endswith("model.pt")
    )
    source.aws("s3").put_object(Bucket=source.endpoints["artifacts_bucket"], Key=key, Body=model_bytes(seed=99))
    assert drill_problems(tmp_path, source, target) == {ProblemKind.SHA256_MISMATCH}


def test_a_history_gap_in_the_backup_fails_the_drill(source, target, tmp_path):
    """The backup lost one history entry (and its manifest was rewritten to match): the restored
    registry cannot explain a version's status."""
    backup = tmp_path / "backup"
    export_table(source.aws("dynamodb"), source.table, backup)
    lines = (backup / ITEMS_FILE).read_text().splitlines()
    approved = next(i for i, line in enumerate(lines) if '"status-approved"' in line)
    (backup / ITEMS_FILE).write_text("\n".join(lines[:approved] + lines[approved + 1 :]) + "\n")
    manifest = json.loads((backup / MANIFEST_FILE).read_text())
    manifest["sha256"] = file_sha256(backup / ITEMS_FILE)
    (backup / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert drill_problems(tmp_path, source, target, backup) == {ProblemKind.HISTORY_GAP}


def test_a_history_gap_in_the_source_fails_the_export(source, tmp_path):
    db = source.aws("dynamodb")
    history = next(i for i in plain_items(db, source.table) if i["sk"].startswith("HISTORY#"))
    db.delete_item(TableName=source.table, Key={"pk": {"S": history["pk"]}, "sk": {"S": history["sk"]}})
    with pytest.raises(Conflict, match="history-gap"):
        export_table(db, source.table, tmp_path / "backup", attempts=2)


def test_the_rpo_counts_what_the_source_changed_after_the_backup(source, target, tmp_path):
    backup = tmp_path / "backup"
    export_table(source.aws("dynamodb"), source.table, backup)
    seed(
        source.endpoints,
        models=["late"],
        versions=1,
        model_pt=model_bytes(seed=1),
        feature_names=FEATURES,
        classes=CLASSES,
        sample_rows=SAMPLE,
    )
    report = Drill(tmp_path / "drill").run(source, backup, target)
    assert report.lost_changes == 6  # META, VERSION, RUNREF, RUN and two history entries
    assert report.rpo_seconds is not None and report.rpo_seconds > 0
