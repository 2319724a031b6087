"""The local Prometheus and Alertmanager: the real binaries (Debian packages `prometheus` and
`prometheus-alertmanager`), configured from the same rules and routes as in AWS.

    <state_dir>/
        prometheus.yml, rules.yml       scrape + evaluation every 1 s; rules from load_rules(local=True)
        alertmanager.yml                dashboards/alertmanager.yml with the local parameters: every
                                        alert to the embedded SNS topic (moto), SigV4 with moto's
                                        test credentials from Alertmanager's environment
        prometheus-data/, alertmanager-data/
        logs/prometheus.log, logs/alertmanager.log
        processes.json                  {"prometheus": {"pid", "start", "port"}, "alertmanager": {...}}

Both listen on 127.0.0.1 only (Alertmanager's cluster listener is off) and run detached, like the
model servers; `stop()` from any instance over the same folder stops them.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from control.errors import DependencyError
from control.local.processes import kill_tree, process_alive, read_json, write_json_atomic
from control.local.serving_state import port_free, server_port, spawn_detached
from dashboards.alertmanager import local_parameters, render_config
from dashboards.rules import LOCAL_INTERVAL, render_rules
from dashboards.scrape import pod_monitors, scrape_config

PROCESSES_FILE = "processes.json"
DEBIAN_PACKAGES = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
# moto accepts any credentials; Alertmanager's AWS SDK reads these from its environment.
SNS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class LocalObservability:
    def __init__(
        self,
        state_dir: Path,
        *,
        serving_targets_file: Path,
        training_targets_file: Path,
        alerts_topic_arn: str,
        region: str,
        sns_api_url: str,
        prometheus_binary: str = "prometheus",
        alertmanager_binary: str = "prometheus-alertmanager",
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.serving_targets_file = Path(serving_targets_file)
        self.training_targets_file = Path(training_targets_file)
        self.alert_parameters = local_parameters(
            alerts_topic_arn=alerts_topic_arn, region=region, sns_api_url=sns_api_url
        )
        self.binaries = {"prometheus": prometheus_binary, "alertmanager": alertmanager_binary}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout

    # -- what callers use ---------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self._process('prometheus')['port']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self._process('alertmanager')['port']}"

    def start(self) -> LocalObservability:
        """Write the configs, start whichever of the two is not running (on its recorded port when
        that is still free, so the other keeps finding it), reload the one that runs, wait until
        both are ready. Calling it again after Alertmanager died brings back Alertmanager alone:
        Prometheus holds its firing alerts meanwhile and re-sends them every 2 s."""
        executables = {name: self._executable(name) for name in self.binaries}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        processes = self._processes()
        dead = [name for name in ("alertmanager", "prometheus") if not self._alive(processes.get(name))]
        for name in dead:
            recorded = processes.get(name, {}).get("port")
            processes[name] = {"port": recorded if recorded and port_free(recorded) else server_port()}
        self._write_configs(processes["alertmanager"]["port"])
        for name in ("alertmanager", "prometheus"):
            if name not in dead:
                os.kill(processes[name]["pid"], signal.SIGHUP)  # both reload their configuration
                continue
            argv = [executables[name], *self._arguments(name, processes[name]["port"])]
            pid, start = spawn_detached(
                argv,
                env={**os.environ, **SNS_CREDENTIALS} if name == "alertmanager" else os.environ,
                cwd=self.state_dir,
                log_path=self.state_dir / "logs" / f"{name}.log",
                python=sys.executable,
            )
            processes[name].update({"pid": pid, "start": start})
            write_json_atomic(self.state_dir / PROCESSES_FILE, processes)
        for name in ("alertmanager", "prometheus"):
            self._wait_ready(name, processes[name])
        return self

    def stop(self) -> None:
        self._stop(self._processes())
        (self.state_dir / PROCESSES_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalObservability:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- configuration ------------------------------------------------------------------------

    def prometheus_config(self, alertmanager_port: int) -> dict[str, Any]:
        """Scrape jobs as prometheus-operator generates them from the PodMonitors (dashboards/scrape.py),
        over the file_sd targets the local runtime writes, every LOCAL_INTERVAL (rules evaluated as often)."""
        monitors = pod_monitors()
        targets = {
            "podmonitor-inference.yaml": self.serving_targets_file,
            "podmonitor-training.yaml": self.training_targets_file,
        }
        return {
            "global": {
                "scrape_interval": LOCAL_INTERVAL,
                "scrape_timeout": LOCAL_INTERVAL,
                "evaluation_interval": LOCAL_INTERVAL,
            },
            "rule_files": [str(self.state_dir / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
            "scrape_configs": [
                scrape_config(monitors[name], str(path), interval=LOCAL_INTERVAL, timeout=LOCAL_INTERVAL)
                for name, path in targets.items()
            ],
        }

    def _write_configs(self, alertmanager_port: int) -> None:
        for targets in (self.serving_targets_file, self.training_targets_file):
            targets.parent.mkdir(parents=True, exist_ok=True)
            if not targets.exists():
                write_json_atomic(targets, [])
        _write_text(self.state_dir / "rules.yml", render_rules(local=True))
        _write_text(self.state_dir / "alertmanager.yml", render_config(self.alert_parameters))
        _write_text(
            self.state_dir / "prometheus.yml",
            yaml.safe_dump(self.prometheus_config(alertmanager_port), sort_keys=False),
        )

    def _arguments(self, name: str, port: int) -> list[str]:
        listen = f"--web.listen-address=127.0.0.1:{port}"
        if name == "prometheus":
            return [
                f"--config.file={self.state_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.state_dir / 'prometheus-data'}",
                "--storage.tsdb.retention.time=2d",
                # Re-send firing alerts every 2 s (default 1 min), so alerts held while Alertmanager
                # was down reach it soon after it returns.
                "--rules.alert.resend-delay=2s",
                listen,
            ]
        return [
            f"--config.file={self.state_dir / 'alertmanager.yml'}",
            f"--storage.path={self.state_dir / 'alertmanager-data'}",
            listen,
            "--cluster.listen-address=",  # otherwise it binds a gossip port on every interface
        ]

    # -- processes ----------------------------------------------------------------------------

    def _executable(self, name: str) -> str:
        found = shutil.which(self.binaries[name])
        if found is None:
            package = DEBIAN_PACKAGES[name]
            raise DependencyError(
                f"{self.binaries[name]} is not installed: install the Debian package {package!r} "
                f"(apt-get install {package}); the project's set-up script does"
            )
        return found

    def _processes(self) -> dict[str, dict[str, Any]]:
        path = self.state_dir / PROCESSES_FILE
        processes: dict[str, dict[str, Any]] = read_json(path) if path.exists() else {}
        return processes

    def _process(self, name: str) -> dict[str, Any]:
        process = self._processes().get(name)
        if not process:
            raise DependencyError(f"{name} is not running here; call start() first")
        return process

    @staticmethod
    def _alive(process: dict[str, Any] | None) -> bool:
        return process is not None and bool(process.get("pid")) and process_alive(process["pid"], process.get("start"))

    def _stop(self, processes: dict[str, dict[str, Any]]) -> None:
        for process in processes.values():
            if self._alive(process):
                kill_tree(process["pid"], group=True, grace_seconds=self.stop_timeout)

    def _wait_ready(self, name: str, process: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.start_timeout
        url = f"http://127.0.0.1:{process['port']}/-/ready"
        while time.monotonic() < deadline:
            if not self._alive(process):
                raise DependencyError(f"{name} exited at start:\n{self._log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise DependencyError(f"{name} was not ready within {self.start_timeout} s:\n{self._log_tail(name)}")

    def _log_tail(self, name: str) -> str:
        path = self.state_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
