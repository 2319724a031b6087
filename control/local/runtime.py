"""The embedded runtime: embedded AWS, the functions in-process, the local clusters, the API.

`EmbeddedRuntime` starts everything the README's commands use and stops what it started. It builds
the platform (the AWS adapters against the embedded AWS, the local training and serving clusters)
and hands it to the functions through the app module's `use_platform`.
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

from control.composition import build_platform
from control.local import lambda_bridge
from control.local.cluster import TARGETS_FILE as TRAINING_TARGETS
from control.local.cluster import LocalCluster
from control.local.external_clusters import ClusterContext, ClusterFactory, EmbeddedClusters
from control.local.moto_server import EmbeddedAws, start_embedded_aws
from control.local.node_capacity import training_node
from control.local.observability import LocalObservability
from control.local.processes import free_port
from control.local.provision import ACCOUNT, REPO, Resources, alerts_topic_arn, provision
from control.local.resources import SCHEDULED_FUNCTIONS, function_name
from control.local.scheduler import LocalScheduler
from control.local.serving import TARGETS_FILE as SERVING_TARGETS
from control.local.serving import LocalServing
from control.local.usage import LocalWorkerUsage
from control.ports import Platform
from control.settings import Settings

FUNCTIONS_DIR = REPO / "functions"


def load_chalice_app() -> ModuleType:
    """Import functions/app.py as the Lambdas would, with its own folder on the path."""
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    return importlib.import_module("app")


# Rollout timings for one machine: seconds instead of the minutes AWS defaults to.
LOCAL_ROLLOUT_DEFAULTS = {
    "replicas": 1,
    "bake_seconds": 8,
    "scale_down_delay_seconds": 12,
    # v(n-1) stays warm (one model-server process, ~250 MiB) this long after a promotion.
    "rollback_window_seconds": 300,
    "ready_timeout_seconds": 120,
    "inconclusive_timeout_seconds": 30,
    "analysis_interval_seconds": 2,
    "poll_interval_seconds": 1,
}
# The scheduled functions' local rate (AWS: the rules' rate, functions/chalicelib/schedules.py): a
# rollback intent whose loop never started is acted on within this.
LOCAL_SCHEDULE_SECONDS = 5.0


class EmbeddedRuntime:
    def __init__(
        self,
        state_dir: Path,
        *,
        stage: str = "local",
        region: str = "us-east-1",
        poll_seconds: int = 1,
        api_port: int | None = None,
        observability: bool = True,
        clusters: ClusterFactory | None = None,
        schedule_seconds: float | None = LOCAL_SCHEDULE_SECONDS,
    ) -> None:
        """`clusters`, if given, builds the training and serving ports the platform runs on in place
        of the local ones (control/local/external_clusters.py). `schedule_seconds`: how often the
        local scheduler invokes the scheduled functions (None: not at all)."""
        self.state_dir = state_dir.resolve()
        self.stage = stage
        self.region = region
        self.poll_seconds = poll_seconds
        self.api_port = api_port or free_port()
        self.api_token = secrets.token_urlsafe(24)
        self.alert_token = secrets.token_urlsafe(24)
        self.aws: EmbeddedAws | None = None
        self.resources: Resources | None = None
        self.observability: LocalObservability | None = None
        self._with_observability = observability
        self.platform: Platform | None = None
        self.training_cluster: LocalCluster | None = None
        self.serving_cluster: LocalServing | None = None
        self._clusters_factory = clusters
        self.clusters: EmbeddedClusters | None = None
        self._api_server: Any = None
        self._api_thread: threading.Thread | None = None
        self._schedule_seconds = schedule_seconds
        self.scheduler: LocalScheduler | None = None
        self._lambda: Any = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> EmbeddedRuntime:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.aws = start_embedded_aws(self.region)
        chalice_app = load_chalice_app()
        lambda_bridge.install(chalice_app.app.handler_map)
        environment = {
            "CONTROL_CLUSTER": "local",
            "CONTROL_LOCAL_STATE_DIR": str(self.state_dir),
            "CONTROL_POLL_SECONDS": str(self.poll_seconds),
            "CONTROL_API_TOKEN": self.api_token,
            "CONTROL_ALERT_TOKEN": self.alert_token,
            "CONTROL_ROLLOUT_DEFAULTS": json.dumps(LOCAL_ROLLOUT_DEFAULTS),
            "CONTROL_TRAINING_NODE_CAPACITY": json.dumps(training_node()),
            "CONTROL_CODE_VERSION": _code_version(),
        }
        if self._with_observability:
            self.observability = LocalObservability(
                self.state_dir / "observability",
                serving_targets_file=self.state_dir / "serving" / SERVING_TARGETS,
                training_targets_file=self.state_dir / "cluster" / TRAINING_TARGETS,
                alerts_topic_arn=alerts_topic_arn(self.region, self.stage),
                region=self.region,
                sns_api_url=self.aws.endpoint_url,
            ).start()
            environment["CONTROL_PROMETHEUS_URL"] = self.observability.prometheus_url
        self.resources, env = provision(self.aws.endpoint_url, self.region, self.stage, environment)
        os.environ.update(env)  # the handlers run in this process: boto3 and the settings read it
        job_env = _aws_env()  # jobs and model servers reach the same (embedded) AWS, with the same keys
        if self._clusters_factory is not None:
            self.clusters = self._clusters_factory(
                ClusterContext(
                    self.state_dir,
                    job_env,
                    serving_targets_file=self.state_dir / "serving" / SERVING_TARGETS,
                    training_targets_file=self.state_dir / "cluster" / TRAINING_TARGETS,
                )
            )
            self.platform = build_platform(
                Settings.from_env(),
                training=self.clusters.training,
                serving=self.clusters.serving,
                efs_root=self.clusters.checkpoints_dir,
            )
        else:
            self.training_cluster = LocalCluster(self.state_dir / "cluster", repo_root=REPO, env=job_env)
            self.serving_cluster = LocalServing(self.state_dir / "serving", repo_root=REPO, env=job_env)
            self.serving_cluster.start_kubelet()
            self.platform = build_platform(
                Settings.from_env(),
                training=self.training_cluster,
                usage=LocalWorkerUsage(self.training_cluster.jobs_dir),
                serving=self.serving_cluster,
                efs_root=self.training_cluster.checkpoints_dir,  # the folder that plays EFS (/mnt/checkpoints)
            )
        chalice_app.use_platform(self.platform)
        self._start_api(chalice_app.app)
        if self._schedule_seconds is not None:
            self.scheduler = LocalScheduler(
                SCHEDULED_FUNCTIONS,
                self._invoke_function,
                every_seconds=self._schedule_seconds,
                region=self.region,
                account=ACCOUNT,
                prefix=f"mlcp-{self.stage}",
            ).start()
        return self

    def _invoke_function(self, name: str, event: dict[str, Any]) -> Any:
        """One invocation through the embedded Lambda (the bridge runs the app's handler)."""
        assert self.aws is not None
        if self._lambda is None:
            from control.adapters.aws import client

            self._lambda = client("lambda", self.region, self.aws.endpoint_url)
        response = self._lambda.invoke(FunctionName=function_name(self.stage, name), Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{name}: {payload}")
        return payload

    def _start_api(self, app: Any) -> None:
        from control.local.api_gateway import create_api_server

        self._api_server = create_api_server(app, "127.0.0.1", self.api_port)
        self._api_thread = threading.Thread(target=self._api_server.server.serve_forever, daemon=True)
        self._api_thread.start()

    def endpoints(self) -> dict[str, Any]:
        assert self.resources is not None
        return (
            {
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
            | self._observability_endpoints()
            | {"deployments": self.deployment_endpoints()}
        )

    def _observability_endpoints(self) -> dict[str, str]:
        if self.observability is None:
            return {}
        return {
            "prometheus_url": self.observability.prometheus_url,
            "alertmanager_url": self.observability.alertmanager_url,
        }

    def deployment_endpoints(self) -> dict[str, str]:
        """Each Service's local URL (the active Service is the deployment's endpoint)."""
        if self.clusters is not None:
            return self.clusters.service_urls()
        serving = self.serving()
        return {name: serving.service_url(name) for name in serving.state.all_services()}

    def serving(self) -> LocalServing:
        assert self.serving_cluster is not None, "start the runtime first"
        return self.serving_cluster

    def fault(self, deployment_name: str, error_ratio: float, latency_ms: float = 0.0) -> None:
        """Make every model server of a version fail `error_ratio` of its invocations."""
        if self.clusters is not None:
            self.clusters.fault(deployment_name, error_ratio, latency_ms)
        else:
            self.serving().fault(deployment_name, error_ratio, latency_ms)

    def training_log_paths(self, job_name: str) -> tuple[Path, Path]:
        """(stdout, stderr) of a training job."""
        if self.clusters is not None:
            return self.clusters.training_log_paths(job_name)
        assert self.training_cluster is not None, "start the runtime first"
        return self.training_cluster.log_paths(job_name)

    def write_endpoints(self, path: Path) -> None:
        path.write_text(json.dumps(self.endpoints(), indent=2) + "\n")

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._api_server is not None:
            self._api_server.server.shutdown()
            self._api_server.server.server_close()
        self._stop_processes()
        if self.aws is not None:
            self.aws.stop()

    def _stop_processes(self) -> None:
        """Every process the platform started: model servers, routers, training jobs, monitors."""
        if self.serving_cluster is not None:
            self.serving_cluster.stop_all()
        if self.training_cluster is not None:
            self.training_cluster.stop_all()
        if self.clusters is not None:
            self.clusters.stop()
        if self.observability is not None:
            self.observability.stop()

    def __enter__(self) -> EmbeddedRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")


def _aws_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name in AWS_ENV}


def _code_version() -> str:
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return "dev"
