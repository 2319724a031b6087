"""The local Service router splits requests by the deployment's Ingress weights, as the ALB does on
EKS: real model servers, real routers, the Ingress recorded exactly as the rollout applies it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.local.router import WeightedPick
from control.local.serving import LocalServing
from control.manifests.serving import (
    canary_service_name,
    ingress_weights,
    render_deployment,
    render_ingress,
    render_service,
)
from tests.support.serving import CONFIG, ROOT, Load, invoke, router_port, serving_version, wait_ready


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalServing]:
    runtime = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=5.0)
    yield runtime
    runtime.stop_all()


def test_the_weighted_pick_gives_exact_interleaved_shares() -> None:
    pick = WeightedPick()
    split = (("iris", 90), ("iris-canary", 10))
    chosen = [pick.choose(split) for _ in range(100)]
    assert Counter(chosen) == {"iris": 90, "iris-canary": 10}
    assert all(chosen[i : i + 10].count("iris-canary") == 1 for i in range(0, 100, 10))  # spread, not a burst


@pytest.mark.slow
def test_requests_follow_the_canary_weight_and_weight_changes_lose_none(serving: LocalServing, tmp_path: Path) -> None:
    v1, v2 = serving_version(tmp_path, 1), serving_version(tmp_path, 2)
    serving.apply(render_deployment(v1, CONFIG))
    serving.apply(render_deployment(v2, CONFIG))
    serving.apply(render_service("iris", 1, CONFIG))
    serving.apply(render_service("iris", 2, CONFIG, canary=True))
    serving.apply(render_ingress("iris", CONFIG, ingress_weights("iris", 10)))
    wait_ready(serving, "iris-v1")
    wait_ready(serving, "iris-v2")
    assert serving.ingress_weights("iris") == {"iris": 90, canary_service_name("iris"): 10}

    port = router_port(serving, "iris")
    served = Counter(invoke(port)[1]["x-model-version"] for _ in range(100))
    assert served == {"1": 90, "2": 10}, "the router answers with the version that served, at the Ingress's split"

    # 20 weight changes under load: every request answered, each by one of the two versions.
    weights = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100] * 2
    with Load(port, clients=4) as load:
        for weight in weights:
            serving.apply(render_ingress("iris", CONFIG, ingress_weights("iris", weight)))
            time.sleep(0.1)
        changed_at = time.monotonic()
        time.sleep(0.5)
    assert load.failures() == []
    assert {o.version for o in load.outcomes if o.started > changed_at + 0.05} == {"2"}  # the last split: 100 %

    serving.apply(render_ingress("iris", CONFIG, ingress_weights("iris", 0)))  # an abort: back to stable at once
    assert {invoke(port)[1]["x-model-version"] for _ in range(20)} == {"1"}
