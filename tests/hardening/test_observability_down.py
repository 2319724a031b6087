"""Alertmanager down, then the control plane's webhook down: the alert is held, not lost.

The real binaries over a real model server: the fault fires the error-ratio alert while
Alertmanager is dead (Prometheus holds it and re-sends every 2 s); Alertmanager comes back alone,
on the same port, and tries the webhook, which refuses (503, as an API in trouble would) until it
recovers; then the alert arrives, once per delivery group, with the bearer token.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from control.kubernetes.serving import render_deployment, render_service
from control.local.cluster import kill_tree
from control.local.observability import LocalObservability
from control.local.serving import LocalServing
from tests.functional.test_local_observability import TOKEN, Catcher, catcher, query  # noqa: F401  (fixture)
from tests.functional.test_local_serving import CONFIG, ROOT, Load, router_port, serving_version, wait_ready
from tests.support import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
        reason="the Debian packages prometheus and prometheus-alertmanager are not installed",
    ),
]
ALERT = "MlcpInferenceHighErrorRatio"


def alertmanager_alerts(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{urllib.parse.urlencode({'active': 'true'})}", timeout=2) as r:
        return [alert["labels"]["alertname"] for alert in json.loads(r.read())]


def test_alerts_raised_while_alertmanager_and_then_the_webhook_are_down_arrive_when_they_return(
    tmp_path: Path,
    catcher: Catcher,  # noqa: F811  (the fixture imported above)
    ledger,
) -> None:
    serving = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=10.0)
    observability = LocalObservability(
        tmp_path / "observability",
        serving_targets_file=serving.targets_file,
        training_targets_file=tmp_path / "training-targets.json",
        webhook_url=catcher.url,
        webhook_token=TOKEN,
    )
    try:
        serving.apply(render_deployment(serving_version(tmp_path, 1), CONFIG))
        serving.apply(render_service("iris", 1, CONFIG))
        observability.start()
        processes = json.loads((observability.state_dir / "processes.json").read_text())
        wait_ready(serving, "iris-v1")
        alertmanager_url = observability.alertmanager_url

        kill_tree(processes["alertmanager"]["pid"], group=True, grace_seconds=5)
        catcher.refuse_with = 503
        with Load(router_port(serving, "iris"), clients=1, pause=0.02):
            serving.fault("iris-v1", error_ratio=1.0)
            wait_for(
                lambda: query(observability.prometheus_url, f'ALERTS{{alertname="{ALERT}", alertstate="firing"}}'),
                60,
                0.25,
                "Prometheus to fire the alert with Alertmanager down",
            )
            assert catcher.deliveries == []

            observability.start()  # brings back Alertmanager alone
            after = json.loads((observability.state_dir / "processes.json").read_text())
            assert after["prometheus"] == processes["prometheus"], "Prometheus was restarted"
            assert after["alertmanager"]["pid"] != processes["alertmanager"]["pid"]
            assert observability.alertmanager_url == alertmanager_url  # same port: no Prometheus reload needed
            wait_for(lambda: ALERT in alertmanager_alerts(alertmanager_url), 15, 0.2, "Prometheus to re-send the alert")
            wait_for(lambda: catcher.refused >= 2, 20, 0.1, "Alertmanager to try the webhook (and retry)")
            assert catcher.firing(ALERT) == []

            catcher.refuse_with = None  # the control plane's webhook is back
            fired = wait_for(lambda: catcher.firing(ALERT), 30, 0.1, "Alertmanager to deliver the held alert")
        assert fired[0][1]["labels"]["deployment"] == "iris"
        assert {auth for _, auth, _ in catcher.deliveries} == {f"Bearer {TOKEN}"}
        ledger.add("observability down", faults_injected=3, events_delivered=len(catcher.deliveries), lost=0)
    finally:
        observability.stop()
        serving.stop_all()
