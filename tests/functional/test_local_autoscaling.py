"""The embedded platform records each version's HPA and VPA and says that no VPA recommender runs here."""

from __future__ import annotations

from control.local.serving import LocalServing
from control.manifests.config import ManifestConfig
from control.manifests.serving import ServingVersion, render_version
from tests.support.tools import REPO

VERSION = ServingVersion("churn", "churn", 1, "s3://a/models/churn/runs/r1/", "a" * 64, replicas=2)


def test_the_recorded_hpa_and_vpa_are_shown_and_the_missing_recommender_is_said(tmp_path) -> None:
    serving = LocalServing(tmp_path / "serving", repo_root=REPO)
    for obj in render_version(VERSION, ManifestConfig()):
        if obj["kind"] != "Deployment":  # no model-server processes for this check
            serving.apply(obj)
    shown = serving.autoscaling("churn-v1")
    assert shown["hpa"]["min_replicas"] == 2 and shown["hpa"]["target_cpu_utilization"] == 70
    assert shown["vpa"]["update_mode"] == "Off" and shown["vpa"]["recommendation"] is None
    assert "no VPA recommender" in shown["vpa"]["note"]
    serving.delete_deployment("churn-v1")
    assert serving.autoscaling("churn-v1") == {"hpa": None, "vpa": None}
