"""`python -m control`: run the embedded platform and drive it."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from control.cli.deployments import deployments
from control.cli.dr import dr
from control.cli.models import models
from control.cli.runs import runs

EPILOG = """\b
Settings: --endpoints FILE (or MLCP_ENDPOINTS), the file `up --endpoints-file` writes; otherwise
MLCP_API_URL with MLCP_API_TOKEN, or without a token SigV4 with your AWS credentials (API Gateway).
Every API command takes --json for scripts.

\b
Exit codes: 0 ok, 1 what you followed failed (run, rollout), 2 invalid input or usage,
3 not found, 4 conflict with the current state, 5 API or a dependency unreachable,
6 not authorized, 7 --timeout ran out.
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}, epilog=EPILOG)
def main() -> None:
    """The ML platform control plane: train, register, deploy and roll back models."""


main.add_command(runs)
main.add_command(models)
main.add_command(deployments)
main.add_command(dr)


@main.command()
@click.option(
    "--endpoints-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the JSON a user or script needs to reach the platform.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where jobs, checkpoints and logs go (default: .state/up-<time>).",
)
def up(endpoints_file: Path, state_dir: Path | None) -> None:
    """Start the embedded platform and stay in the foreground until Ctrl-C."""
    from control.demo.training import console, state_dir_for
    from control.local.runtime import EmbeddedRuntime

    platform = EmbeddedRuntime(state_dir or state_dir_for("up")).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        platform.write_endpoints(endpoints_file)
        console.print(f"embedded platform up; endpoints in [bold]{endpoints_file}[/]. Ctrl-C stops it.")
        for name, value in platform.endpoints().items():
            if name != "api_token":
                console.print(f"  {name}: {value}")
        written = platform.endpoints()
        while not stop.wait(2):  # deployments appear as they are rolled out: keep the file current
            if (current := platform.endpoints()) != written:
                platform.write_endpoints(endpoints_file)
                written = current
    finally:
        console.print("stopping every process the platform started ...")
        platform.stop()


@main.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the HTML report goes (default: reports/demo-<time>).",
)
def demo(state_dir: Path | None, report_dir: Path | None) -> None:
    """Run the whole loop on the embedded platform: S3 drop → training → registration → rollout →
    fault → alert → rollback, then a faulty v3 by canary aborted at its first step. Prints the
    timeline and the path of an HTML report."""
    from control.demo.serving import run_full_demo
    from control.demo.training import console, progress_only, state_dir_for
    from control.local.runtime import EmbeddedRuntime

    report_dir = report_dir or Path("reports") / state_dir_for("demo").name
    with (
        progress_only(report_dir / "demo.log") as log,
        EmbeddedRuntime(state_dir or state_dir_for("demo")) as platform,
    ):
        console.print(
            f"[bold]embedded platform up[/]: AWS at {platform.endpoints()['aws_endpoint_url']}, "
            f"API at {platform.api_url}, Prometheus at {platform.endpoints().get('prometheus_url')}"
        )
        ok, reason, page = run_full_demo(platform, report_dir)
    console.print(f"report: [bold]{page.resolve()}[/]")
    console.print(f"log (the API's access log, the functions' JSON logs): {log.resolve()}")
    if not ok:
        console.print(f"[red bold]demo failed:[/] {reason}")
        sys.exit(1)
    console.print(
        "[green bold]demo succeeded[/]: trained, registered, rolled out, rolled back on an alert, "
        "aborted a faulty canary"
    )
