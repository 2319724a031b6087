"""The disaster-recovery drill end to end: a platform with a deployment is lost; `python -m
control dr drill` restores its registry and artifacts into a second embedded platform, proves
them, redeploys the deployment's last-known-good there and gets a prediction from it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from control.client import ApiClient, load_settings
from control.dr import fresh_platform
from control.local.registry_seed import seed
from tests.support import wait_for
from tests.workloads.inference.inference_artifact import CLASSES, FEATURES, model_bytes

pytestmark = pytest.mark.e2e


def test_the_drill_restores_a_lost_platform_and_serves_its_last_known_good(tmp_path):
    with fresh_platform(tmp_path / "lost") as lost:
        seed(
            lost.endpoints,
            models=["churn", "fraud"],
            versions=2,
            model_pt=model_bytes(seed=3),
            feature_names=FEATURES,
            classes=CLASSES,
            sample_rows=[[5.1, 3.5, 1.4, 0.2]],
        )
        api = ApiClient(load_settings(lost.endpoints_file))
        api.start_rollout("churn-api", {"model": "churn", "version": 2, "preview_traffic_seconds": 30})
        wait_for(
            lambda: api.get_deployment("churn-api")["status"]["phase"] == "COMPLETED",
            timeout=240,
            interval=1,
            what="the rollout on the platform to be lost",
        )
        drill = subprocess.run(
            [sys.executable, "-m", "control", "dr", "drill", "--endpoints", str(lost.endpoints_file)]
            + ["--work-dir", str(tmp_path / "drill"), "--json"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
    report = json.loads(drill.stdout)
    assert report["ok"] and report["problems"] == [] and report["versions_verified"] == 4
    assert report["rto_met"] and report["rpo_met"] and report["lost_changes"] == 0
    [redeployed] = report["redeployed"]
    assert redeployed["deployment"] == "churn-api" and redeployed["version"] == 2
    assert 0 < redeployed["switched_s"] <= redeployed["first_prediction_s"] <= report["rto_seconds"]
