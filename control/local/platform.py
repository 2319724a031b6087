"""The embedded platform: embedded AWS, the functions in-process, the local cluster, the API.

`EmbeddedPlatform` starts everything the README's commands use and stops what it started.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from control.local import lambda_bridge
from control.local.moto_server import EmbeddedAws, free_port, start_embedded_aws
from control.local.provision import REPO, Resources, provision

FUNCTIONS_DIR = REPO / "functions"


def load_chalice_app() -> ModuleType:
    """Import functions/app.py as the Lambdas would, with its own folder on the path."""
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    return importlib.import_module("app")


class EmbeddedPlatform:
    def __init__(
        self,
        state_dir: Path,
        *,
        stage: str = "local",
        region: str = "us-east-1",
        poll_seconds: int = 1,
        api_port: int | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.stage = stage
        self.region = region
        self.poll_seconds = poll_seconds
        self.api_port = api_port or free_port()
        self.api_token = secrets.token_urlsafe(24)
        self.aws: EmbeddedAws | None = None
        self.resources: Resources | None = None
        self._api_server: Any = None
        self._api_thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> EmbeddedPlatform:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.aws = start_embedded_aws(self.region)
        chalice_app = load_chalice_app()
        lambda_bridge.install(chalice_app.app.handler_map)
        environment = {
            "CONTROL_CLUSTER": "local",
            "CONTROL_LOCAL_STATE_DIR": str(self.state_dir),
            "CONTROL_POLL_SECONDS": str(self.poll_seconds),
            "CONTROL_API_TOKEN": self.api_token,
            "CONTROL_CODE_VERSION": _code_version(),
        }
        self.resources, env = provision(self.aws.endpoint_url, self.region, self.stage, environment)
        os.environ.update(env)  # the handlers run in this process and read it at first use
        from chalicelib.runtime import current_platform

        current_platform.cache_clear()
        self._start_api(chalice_app.app)
        return self

    def _start_api(self, app: Any) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        self._api_server = create_local_server(app, Config.create(), "127.0.0.1", self.api_port)
        self._api_thread = threading.Thread(target=self._api_server.server.serve_forever, daemon=True)
        self._api_thread.start()

    def endpoints(self) -> dict[str, Any]:
        assert self.resources is not None
        return {
            "aws_endpoint_url": self.resources.aws_endpoint_url,
            "region": self.region,
            "api_url": self.api_url,
            "api_token": self.api_token,
            "data_bucket": self.resources.data_bucket,
            "artifacts_bucket": self.resources.artifacts_bucket,
            "registry_table": self.resources.registry_table,
            "dead_letter_queue_url": self.resources.dead_letter_queue_url,
            "alerts_topic_arn": self.resources.alerts_topic_arn,
            "state_machines": dict(self.resources.state_machines),
            "state_dir": str(self.state_dir),
        }

    def write_endpoints(self, path: Path) -> None:
        path.write_text(json.dumps(self.endpoints(), indent=2) + "\n")

    def stop(self) -> None:
        if self._api_server is not None:
            self._api_server.server.shutdown()
            self._api_server.server.server_close()
        self._stop_training_jobs()
        if self.aws is not None:
            self.aws.stop()

    def _stop_training_jobs(self) -> None:
        from chalicelib.runtime import current_platform

        cluster = current_platform().cluster
        stop_all = getattr(cluster, "stop_all", None)
        if stop_all is not None:
            stop_all()

    def __enter__(self) -> EmbeddedPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _code_version() -> str:
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return "dev"
