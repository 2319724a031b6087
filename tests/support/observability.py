"""The real Prometheus and Alertmanager over a real model server, and an SNS stand-in that records
what Alertmanager publishes."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from control.local.observability import LocalObservability
from control.local.processes import free_port
from control.local.serving import LocalServing
from control.manifests.serving import render_deployment, render_service
from tests.support.serving import CONFIG, ROOT, serving_version, wait_ready

REGION = "us-east-1"


class SnsStandIn(ThreadingHTTPServer):
    """moto's SNS with a topic, behind a pass-through that records every Publish moto accepted:
    (arrival time, Authorization header, form fields). While `refuse_with` holds a status code it
    answers that instead (SNS in trouble), forwards nothing and counts `refused`."""

    daemon_threads = True

    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url
        self.publishes: list[tuple[float, str, dict[str, str]]] = []
        self.refuse_with: int | None = None
        self.refused = 0
        sns = boto3.client(
            "sns",
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.topic_arn: str = sns.create_topic(Name=f"obs-{uuid.uuid4().hex[:8]}-alerts")["TopicArn"]
        super().__init__(("127.0.0.1", 0), _PassThrough)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def messages(self) -> list[tuple[float, dict[str, Any]]]:
        return [(arrived, json.loads(form["Message"])) for arrived, _, form in list(self.publishes)]

    def firing(self, alertname: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (arrived, alert)
            for arrived, body in self.messages()
            for alert in body.get("alerts", [])
            if alert["status"] == "firing" and alert["labels"].get("alertname") == alertname
        ]

    def signers(self) -> set[str]:
        """The SigV4 credential scope of every Publish: access key/date/region/service/aws4_request."""
        scopes = [auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") for _, auth, _ in self.publishes]
        return {f"{scope[0]}/{scope[2]}/{scope[3]}" for scope in scopes}


class _PassThrough(BaseHTTPRequestHandler):
    server: SnsStandIn

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.refuse_with is not None:
            self.server.refused += 1
            self.send_response(self.server.refuse_with)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        reply = requests.post(self.server.moto_url + self.path, data=body, headers=headers, timeout=10)
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if reply.status_code == 200 and form.get("Action") == "Publish":
            self.server.publishes.append((time.monotonic(), self.headers.get("Authorization", ""), form))
        self.send_response(reply.status_code)
        self.send_header("Content-Type", reply.headers.get("Content-Type", "text/xml"))
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)


@contextlib.contextmanager
def sns_stand_in() -> Iterator[SnsStandIn]:
    """moto's server on a free port with the stand-in in front; both stopped on exit."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    port = moto._server.server_port  # type: ignore[union-attr]
    server = SnsStandIn(f"http://127.0.0.1:{port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    moto.stop()


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        result: list[dict[str, Any]] = json.loads(reply.read())["data"]["result"]
        return result


@contextlib.contextmanager
def iris_observed(tmp_path: Path, sns: SnsStandIn) -> Iterator[tuple[LocalServing, LocalObservability]]:
    """A ready model server (iris v1 behind its router), scraped by the real Prometheus, whose
    Alertmanager publishes to `sns`; both stopped on exit."""
    serving = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=10.0)
    watching = LocalObservability(
        tmp_path / "observability",
        serving_targets_file=serving.targets_file,
        training_targets_file=tmp_path / "training-targets.json",
        alerts_topic_arn=sns.topic_arn,
        region=REGION,
        sns_api_url=sns.url,
    )
    try:
        serving.apply(render_deployment(serving_version(tmp_path, 1), CONFIG))
        serving.apply(render_service("iris", 1, CONFIG))
        watching.start()
        wait_ready(serving, "iris-v1")
        yield serving, watching
    finally:
        watching.stop()
        serving.stop_all()
