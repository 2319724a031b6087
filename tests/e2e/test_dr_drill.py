"""The deploy smoke test and the disaster-recovery drill end to end, as the scheduled workflow runs
them (scripts/dr_drill.sh): a platform gets a model trained, approved and rolled out by
scripts/smoke_test.sh through the CLI; it is then lost, and `python -m control dr drill` restores
its registry and artifacts into a second embedded platform, proves them, redeploys the
deployment's last-known-good there and gets a prediction from it."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.support.tools import REPO

pytestmark = pytest.mark.e2e


def test_smoke_test_then_the_drill_restores_the_lost_platform_and_serves_its_last_known_good(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROL_", "MOTO_", "AWS_"))}
    drill = subprocess.run(
        ["bash", str(REPO / "scripts" / "dr_drill.sh")],
        env=environment | {"WORK": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert drill.returncode == 0, drill.stdout[-4000:] + drill.stderr[-4000:]
    assert re.search(r"smoke test passed: smoke v\d+ serves on smoke-api", drill.stdout), drill.stdout[-2000:]
    report = json.loads((tmp_path / "drill" / "drill-report.json").read_text())
    assert report["ok"] and report["problems"] == [] and report["versions_verified"] >= 1
    assert report["rto_met"] and report["rpo_met"] and report["lost_changes"] == 0 and report["rpo_seconds"] == 0
    [redeployed] = report["redeployed"]
    assert redeployed["deployment"] == "smoke-api" and redeployed["model"] == "smoke"
    assert 0 < redeployed["switched_s"] <= redeployed["first_prediction_s"] <= report["rto_seconds"]
