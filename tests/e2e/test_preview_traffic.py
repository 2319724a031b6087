"""A deployment nobody sends requests to still rolls out: training registers a sample request with
each version, the rollout runs a load test (the same Job manifest EKS gets, run here as a process)
against the preview Service during analysis, and deletes it when the analysis ends. With preview
traffic off, the analysis says that no requests arrived and why, and a person promotes it by hand."""

import uuid
from typing import Any

import pytest

from control.cli.api_client import ApiClient
from control.cli.errors import ClientError
from control.demo.training import run_training_demo
from control.manifests.serving import preview_traffic_job_name
from tests.support import wait_for
from tests.support.api import api_client

pytestmark = pytest.mark.e2e

AT_REST = {"COMPLETED", "ROLLED_BACK", "FAILED"}


def wait_phase(api: ApiClient, deployment: str, phases: set[str], timeout: float, version: int) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = api.get_deployment(deployment)["status"]
        return status if status["target_version"] == version and status["phase"] in phases else None

    return wait_for(reached, timeout, 0.5, f"{deployment} v{version} to reach {sorted(phases)}")


def test_no_outside_traffic_rolls_out_on_its_own_and_a_paused_rollout_is_promoted_by_hand(embedded, endpoints, aws):
    model = f"quiet-{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-api"
    api = api_client(endpoints)
    for version, seed in ((1, 31), (2, 32)):
        trained = run_training_demo(embedded, model=model, rows=1500, seed=seed, dataset_version=f"v{version}")
        assert trained.ok, trained.reason
        api.decide(model, version, "approve", "test")

    lineage = api.get_version(model, 1)["lineage"]
    bucket, _, key = lineage["sample_request_uri"].removeprefix("s3://").partition("/")
    assert lineage["sample_request_uri"] == lineage["artifact_uri"].rsplit("/", 1)[0] + "/sample.json"
    sample = aws("s3").get_object(Bucket=bucket, Key=key)
    assert sample["ContentType"] == "application/json" and sample["Body"].read().startswith(b'{"instances": [[')

    # v1 with nobody calling it: the preview traffic gives the analyses their data.
    api.start_rollout(deployment, {"model": model, "version": 1})
    first = wait_phase(api, deployment, AT_REST, 180, version=1)
    assert (first["phase"], first["active_version"]) == ("COMPLETED", 1), first
    described = api.get_deployment(deployment)
    started = [h for h in described["history"] if h["action"] == "preview-traffic-started"]
    assert len(started) == 1 and lineage["sample_request_uri"] in started[0]["reason"]
    serving = embedded.serving()
    job = preview_traffic_job_name(deployment, 1)
    assert not serving.job_exists(job)  # deleted once the analysis ended

    with pytest.raises(ClientError) as refused:
        api.promote(deployment, "nothing to promote")
    assert refused.value.status == 409 and "only while PAUSED or in analysis" in refused.value.message

    # v2 with preview traffic off: the analysis has no data, says so, pauses; a person promotes it.
    api.start_rollout(
        deployment, {"model": model, "version": 2, "preview_traffic_rate": 0, "inconclusive_timeout_seconds": 3}
    )
    paused = wait_phase(api, deployment, {"PAUSED"}, 120, version=2)
    assert "no requests reached the preview v2 in the last 1m" in paused["reason"], paused
    assert "preview traffic is off" in paused["last_analysis"]["error"]
    assert not serving.job_exists(preview_traffic_job_name(deployment, 2))
    api.promote(deployment, "checked the preview by hand")
    baking_paused = wait_for(
        lambda: (s := api.get_deployment(deployment)["status"])["phase"] in ("PAUSED", *AT_REST)
        and s["active_version"] == 2 and s,
        60, 0.5, "the promoted v2 to bake",
    )  # fmt: skip
    assert baking_paused["phase"] == "PAUSED" and baking_paused["paused_from"] == "BAKING", baking_paused
    api.promote(deployment, "bake skipped by hand")
    done = wait_phase(api, deployment, AT_REST, 120, version=2)
    assert (done["phase"], done["active_version"], done["stable_version"]) == ("COMPLETED", 2, 2), done

    history = api.get_deployment(deployment)["history"]
    asked = [h for h in history if h["action"] == "promotion-requested"]
    assert [h["reason"] for h in asked] == ["api: checked the preview by hand", "api: bake skipped by hand"]
    by_hand = [h["reason"] for h in history if h["action"] == "promoted-by-hand"]
    assert by_hand == [
        "v2 promoted by hand past pre-promotion analysis by api: checked the preview by hand",
        "v2 promoted by hand past the bake by api: bake skipped by hand",
    ]
