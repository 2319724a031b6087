"""Canary end to end on the embedded platform: v1 serves; a faulty v2 by canary is judged against v1
by the real Prometheus at its first step and aborted (weight 0 at once, never promoted); a healthy
v3 by canary walks its steps to 100 %. Under constant load, no request fails outside the canary's
share, and every answer names the version that served it."""

from __future__ import annotations

import time
import uuid

import pytest

from control.demo.canary import FaultOnArrival, start_rollout, wait_until_done, weight_changes
from control.local.loadgen import LoadGenerator
from control.local.registry_seed import seed
from tests.support.api import api_client
from tests.support.inference_artifact import CLASSES, FEATURES, model_bytes

pytestmark = pytest.mark.e2e

FAULTY = {"type": "canary", "steps": [{"setWeight": 20}, {"pause": "30s"}, {"analysis": {}}, {"setWeight": 100}]}
HEALTHY = {"type": "canary", "weights": "25,60,100", "step_pause": "6s"}


def test_a_faulty_canary_is_aborted_at_its_first_step_and_a_healthy_one_reaches_full_traffic(embedded, endpoints):
    model = f"canary-{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-api"
    seed(endpoints, models=[model], versions=3, model_pt=model_bytes(seed=5), feature_names=FEATURES,
         classes=CLASSES, sample_rows=[[5.1, 3.5, 1.4, 0.2]])  # fmt: skip
    api = api_client(endpoints)
    start_rollout(api, deployment, model, 1)
    assert wait_until_done(api, deployment, 1, 180)["status"]["phase"] == "COMPLETED"

    url = embedded.deployment_endpoints()[deployment]
    load = LoadGenerator.for_features(url, features=len(FEATURES), rate=20.0).start()
    fault = FaultOnArrival(embedded.serving(), deployment, 2, error_ratio=0.5).start()
    try:
        time.sleep(2)
        start_rollout(api, deployment, model, 2, FAULTY)
        aborted = wait_until_done(api, deployment, 2, 180)
        aborted_at = time.time()
        start_rollout(api, deployment, model, 3, HEALTHY)
        promoted = wait_until_done(api, deployment, 3, 240)
        time.sleep(2)
    finally:
        fault.stop()
        samples = load.stop()

    status = aborted["status"]
    assert status["phase"] == "ROLLED_BACK" and status["active_version"] == 1, status
    assert status["intent"]["key"] == "canary-analysis", status["intent"]  # the real Prometheus judged it
    assert "at 20%" in status["reason"] and "stable" in status["reason"]
    assert weight_changes(aborted, 2) == [
        "traffic to v2 0% → 20% (canary step 1: setWeight)",
        weight_changes(aborted, 2)[1],
    ] and weight_changes(aborted, 2)[1].startswith("traffic to v2 set to 0% at once")
    assert not any(e["action"] == "promoted" and e.get("version") == 2 for e in aborted["history"])

    assert promoted["status"]["phase"] == "COMPLETED" and promoted["status"]["active_version"] == 3
    assert [c.split(" (")[0] for c in weight_changes(promoted, 3)] == [
        "traffic to v3 0% → 25%", "traffic to v3 25% → 60%", "traffic to v3 60% → 100%"
    ]  # fmt: skip

    assert fault.set_at is not None
    failed = [s for s in samples if s.status != 200]
    assert failed and {s.version for s in failed} == {"2"}, "a request outside the canary's share failed"
    faulty_window = [s for s in samples if fault.set_at <= s.at <= aborted_at and s.status]
    share = sum(1 for s in faulty_window if s.version == "2") / max(1, len(faulty_window))
    assert share < 0.3, f"the canary got {share:.0%} of the requests at a 20 % weight"
    assert {s.version for s in samples[-20:]} == {"3"}
