"""Alertmanager down, then the control plane's SNS delivery down: the alert is held, not lost.

The real binaries over a real model server: the fault fires the error-ratio alert while
Alertmanager is dead (Prometheus holds it and re-sends every 2 s); Alertmanager comes back alone,
on the same port, and tries to publish to SNS, which refuses (503, as a throttled or failing SNS
would) until it recovers; then the alert is published to the topic (moto's server), SigV4-signed.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.local.processes import kill_tree
from tests.support import wait_for
from tests.support.observability import SnsStandIn, iris_observed, query, sns_stand_in
from tests.support.serving import Load, router_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
        reason="the Debian packages prometheus and prometheus-alertmanager are not installed",
    ),
]
ALERT = "MlcpInferenceHighErrorRatio"


@pytest.fixture
def sns() -> Iterator[SnsStandIn]:
    with sns_stand_in() as server:
        yield server


def alertmanager_alerts(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{urllib.parse.urlencode({'active': 'true'})}", timeout=2) as r:
        return [alert["labels"]["alertname"] for alert in json.loads(r.read())]


def test_alerts_raised_while_alertmanager_and_then_sns_are_down_arrive_when_they_return(
    tmp_path: Path,
    sns: SnsStandIn,
    ledger,
) -> None:
    with iris_observed(tmp_path, sns) as (serving, observability):
        processes = json.loads((observability.state_dir / "processes.json").read_text())
        alertmanager_url = observability.alertmanager_url

        kill_tree(processes["alertmanager"]["pid"], group=True, grace_seconds=5)
        sns.refuse_with = 503
        with Load(router_port(serving, "iris"), clients=1, pause=0.02):
            serving.fault("iris-v1", error_ratio=1.0)
            wait_for(
                lambda: query(observability.prometheus_url, f'ALERTS{{alertname="{ALERT}", alertstate="firing"}}'),
                60,
                0.25,
                "Prometheus to fire the alert with Alertmanager down",
            )
            assert sns.publishes == []

            observability.start()  # brings back Alertmanager alone
            after = json.loads((observability.state_dir / "processes.json").read_text())
            assert after["prometheus"] == processes["prometheus"], "Prometheus was restarted"
            assert after["alertmanager"]["pid"] != processes["alertmanager"]["pid"]
            assert observability.alertmanager_url == alertmanager_url  # same port: no Prometheus reload needed
            wait_for(lambda: ALERT in alertmanager_alerts(alertmanager_url), 15, 0.2, "Prometheus to re-send the alert")
            wait_for(lambda: sns.refused >= 2, 20, 0.1, "Alertmanager to try SNS (and retry)")
            assert sns.firing(ALERT) == []

            sns.refuse_with = None  # SNS is back
            fired = wait_for(lambda: sns.firing(ALERT), 30, 0.1, "Alertmanager to publish the held alert")
        assert fired[0][1]["labels"]["deployment"] == "iris"
        assert sns.signers() == {"testing/us-east-1/sns"}
        ledger.add("observability down", faults_injected=3, events_delivered=len(sns.publishes), lost=0)
