"""`python -m control deployments ...`: blue-green and canary rollouts, watching them, promoting, aborting or
rolling back, history."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from control.cli.common import PROG, Cli, Instant, VersionNumber, api_command, escape, number, short_time, version_label
from control.cli.errors import ClientError, ExitCode
from control.cli.models import print_history

DEPLOYMENT_HINTS: dict[Any, str] = {ExitCode.NOT_FOUND: f"list deployments with `{PROG} deployments list`"}
DEPLOY_HINTS = DEPLOYMENT_HINTS | {
    (ExitCode.NOT_FOUND, "model"): f"list models with `{PROG} models list`",
    (ExitCode.NOT_FOUND, "version"): f"list versions with `{PROG} models versions MODEL`",
}
DONE_PHASES = {"COMPLETED": ExitCode.OK, "ROLLED_BACK": ExitCode.FAILED, "FAILED": ExitCode.FAILED}


@click.group()
def deployments() -> None:
    """Deploy versions blue-green or by canary, watch rollouts, promote or abort by hand, roll back."""


def strategy_body(canary: str | None, step_pause: str | None, blue_green: bool) -> Any:
    """--canary 10,50,100 [--step-pause 30s] | --blue-green → the API's strategy; None: not given."""
    if blue_green and canary:
        raise click.UsageError("--canary and --blue-green exclude each other")
    if step_pause and not canary:
        raise click.UsageError("--step-pause goes with --canary")
    if blue_green:
        return "blueGreen"
    if canary:
        return {"type": "canary", "weights": canary, **({"step_pause": step_pause} if step_pause else {})}
    return None


def canary_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--canary", metavar="WEIGHTS", help="Canary steps by weight, e.g. 10,50,100 (% of requests)."),
            click.option(
                "--step-pause", metavar="DURATION", help="With --canary: hold each weight this long (30s, 5m)."
            ),
            click.option("--blue-green", is_flag=True, help="Blue-green (preview, analysis, switch)."),
        ]
    ):
        command = option(command)
    return command


@api_command(deployments, "list", short_help="Deployment names.")
def list_deployments(cli: Cli) -> None:
    """Every deployment by name (see `deployments show NAME` for its state)."""
    names = cli.api.list_deployments()

    def render(out: Console) -> None:
        if not names:
            out.print(f"no deployments yet; create one with `{PROG} deployments deploy NAME --model M --version N`")
            return
        for name in names:
            out.print(str(name))

    cli.emit(names, render)


@api_command(deployments, "show", hints=DEPLOYMENT_HINTS, short_help="Phase, versions, last analysis, recent changes.")
@click.argument("name")
def show(cli: Cli, name: str) -> None:
    """A deployment: phase, active and preview versions, last analysis, recent history."""
    found = cli.api.get_deployment(name)

    def render(out: Console) -> None:
        out.print(rollout_view(found))
        scaling = autoscaling_lines(found.get("autoscaling"))
        if scaling:
            out.print(Text("\n".join(scaling)))
        history = sorted(found.get("history") or [], key=lambda e: str(e.get("at")))[-5:]
        if history:
            print_history(out, {"history": history}, title="recent changes")

    cli.emit(found, render)


def autoscaling_lines(scaling: Any) -> list[str]:
    """The active version's HPA and, beside it, what VPA recommends for its model servers."""
    if not isinstance(scaling, dict):
        return []
    lines = []
    hpa = scaling.get("hpa")
    if hpa:
        lines.append(
            f"HPA v{scaling.get('version')}: {hpa.get('min_replicas')}..{hpa.get('max_replicas')} replicas at "
            f"{hpa.get('target_cpu_utilization')} % CPU, now {hpa.get('current_replicas')} "
            f"(wants {hpa.get('desired_replicas')})"
        )
    vpa = scaling.get("vpa")
    if vpa:
        recommended = vpa.get("recommendation") or []

        def one(r: dict[str, Any]) -> str:
            target, low, high = (r.get(key) or {} for key in ("target", "lower_bound", "upper_bound"))
            return (
                f"{r.get('container')} cpu {target.get('cpu')} memory {target.get('memory')} "
                f"(memory bounds {low.get('memory')}..{high.get('memory')})"
            )

        shown = "; ".join(one(r) for r in recommended)
        lines.append(
            f"VPA ({vpa.get('update_mode')}, recommendations only): "
            + (shown or str(vpa.get("note") or "no recommendation yet"))
        )
    return lines


def rollout_view(deployment: dict[str, Any]) -> Group:
    """Phase, versions and the last analysis round: what a person watching a rollout needs."""
    status = deployment.get("status") or {}
    phase = str(status.get("phase", ""))
    colour = {"COMPLETED": "green", "ROLLED_BACK": "yellow", "FAILED": "red", "PAUSED": "yellow"}.get(phase, "cyan")
    table = Table(
        title=f"deployment {deployment.get('deployment')} ({deployment.get('model')})",
        title_justify="left",
        show_header=False,
    )
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("phase", f"[{colour} bold]{phase}[/] since {short_time(status.get('phase_entered_at'))}")
    table.add_row("target", version_label(status.get("target_version")))
    table.add_row("active", version_label(status.get("active_version")))
    canary = deployment.get("canary")
    table.add_row("canary" if canary else "preview", version_label(status.get("preview_version")))
    table.add_row("last-known-good", version_label(status.get("stable_version")))
    if status.get("reason"):
        table.add_row("reason", escape(str(status["reason"])))
    if canary:
        table.add_row(
            "canary weight",
            f"[bold]{canary.get('weight')}%[/] of the requests to {version_label(status.get('target_version'))}",
        )
        table.add_row(
            "canary step", f"{canary.get('step')}/{canary.get('steps')}: {escape(str(canary.get('current')))}"
        )
        left = canary.get("next_step_in_seconds")
        table.add_row("next step", f"in {left:.0f}s" if left is not None else escape(str(canary.get("waiting_for"))))
    parts: list[Any] = [table]
    analysis = status.get("last_analysis")
    if analysis:
        checks = Table(
            title=(
                f"last analysis: {analysis.get('stage')} of v{analysis.get('version')} → {analysis.get('outcome')} "
                f"({short_time(analysis.get('measured_at'))})"
            ),
            title_justify="left",
        )
        compared = any("baseline" in check for check in analysis.get("checks") or [])
        for column in ("check", "value", *(["stable"] if compared else []), "needs", "outcome"):
            checks.add_column(column)
        for check in analysis.get("checks") or []:
            outcome = str(check.get("outcome", ""))
            tint = {"PASSED": "green", "FAILED": "red"}.get(outcome.upper(), "yellow")
            stable = ["no data" if check.get("baseline") is None else number(check.get("baseline"))] if compared else []
            checks.add_row(
                str(check.get("name")),
                "no data" if check.get("value") is None else number(check.get("value")),
                *stable,
                f"{check.get('comparison')} {number(check.get('threshold'))}",
                f"[{tint}]{outcome}[/]",
            )
        parts.append(checks)
        if analysis.get("error"):
            parts.append(Text(f"no verdict: {analysis['error']}", style="yellow"))
    return Group(*parts)


# -- deploy, watch, roll back ----------------------------------------------------------------------


@api_command(deployments, "deploy", hints=DEPLOY_HINTS, short_help="Roll a version out blue-green or by canary.")
@click.argument("name")
@click.option("--model", help="The model (default: the one the deployment already serves).")
@click.option("--version", "version", type=VersionNumber(), required=True, help="The approved version to roll out.")
@click.option("--replicas", type=int, help="Replicas of the new version.")
@click.option("--bake-seconds", type=float, help="How long the new version serves before it counts as good.")
@click.option("--scale-down-delay-seconds", type=float, help="How long the old version stays warm after the switch.")
@click.option(
    "--preview-traffic-rate",
    type=float,
    help="Requests/s of the version's sample request sent to the preview while it is analysed (default 5; 0: off).",
)
@click.option("--preview-traffic-seconds", type=float, help="The most seconds that load test runs (default 1800).")
@canary_options
@click.option("--watch", is_flag=True, help="Then watch the rollout until it ends (exit 1 if rolled back).")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds --watch waits.")
def deploy(
    cli: Cli,
    name: str,
    model: str | None,
    version: int,
    replicas: int | None,
    bake_seconds: float | None,
    scale_down_delay_seconds: float | None,
    preview_traffic_rate: float | None,
    preview_traffic_seconds: float | None,
    canary: str | None,
    step_pause: str | None,
    blue_green: bool,
    watch: bool,
    timeout: float,
) -> None:
    """Roll VERSION out to deployment NAME: blue-green (preview, analysis, switch, bake) or, with
    --canary 10,50,100, by canary steps (each weight held --step-pause, then analysed against stable).
    Without either, the deployment's strategy."""
    if model is None:
        try:
            model = str(cli.api.get_deployment(name)["model"])
        except ClientError as error:
            if error.exit_code != ExitCode.NOT_FOUND:
                raise
            raise ClientError(
                f"deployment {name!r} does not exist yet, so --model is needed",
                ExitCode.INVALID,
                hint=f"{PROG} deployments deploy {name} --model MODEL --version {version}",
                error="MissingOption",
                field="model",
            ) from error
    body: dict[str, Any] = {"model": model, "version": version}
    for key, value in (
        ("replicas", replicas),
        ("bake_seconds", bake_seconds),
        ("scale_down_delay_seconds", scale_down_delay_seconds),
        ("preview_traffic_rate", preview_traffic_rate),
        ("preview_traffic_seconds", preview_traffic_seconds),
    ):
        if value is not None:
            body[key] = value
    strategy = strategy_body(canary, step_pause, blue_green)
    if strategy is not None:
        body["strategy"] = strategy
    started = cli.api.start_rollout(name, body)
    if watch:
        cli.note(f"rolling {model} v{version} out to [bold]{name}[/]")
        _watch(cli, name, timeout=timeout, interval=2.0)
        return
    cli.emit(
        started,
        lambda out: out.print(
            f"rolling {model} v{version} out to [bold]{name}[/]; watch it: {PROG} deployments watch {name}"
        ),
    )


@api_command(
    deployments, "watch", hints=DEPLOYMENT_HINTS, short_help="Watch a rollout live: phase, versions, analysis."
)
@click.argument("name")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait before giving up (exit 7).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def watch(cli: Cli, name: str, timeout: float, interval: float) -> None:
    """Watch a rollout live: phase, active/preview versions, analysis results.

    Exits 0 when it completes, 1 when it is rolled back or fails, 7 on --timeout."""
    _watch(cli, name, timeout=timeout, interval=interval)


def _watch(cli: Cli, name: str, *, timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    found = cli.api.get_deployment(name)
    last_phase = ""
    last_weight: Any = None
    screen = Console(quiet=True) if cli.as_json else cli.out  # --json: nothing drawn, JSON at the end
    with Live(rollout_view(found), console=screen, refresh_per_second=4, transient=True) as live:
        while True:
            status = found.get("status") or {}
            phase = str(status.get("phase", ""))
            canary = found.get("canary") or {}
            weight = canary.get("weight")
            if canary and weight != last_weight and not cli.as_json:
                live.console.print(
                    f"  {short_time(status.get('step_started_at'))}  canary weight [bold]{weight}%[/] "
                    f"(step {canary.get('step')}/{canary.get('steps')}: {escape(str(canary.get('current')))})"
                )
            last_weight = weight
            if phase != last_phase:
                last_phase = phase
                if not cli.as_json:
                    reason = f": {escape(str(status['reason']))}" if status.get("reason") else ""
                    live.console.print(
                        f"  {short_time(status.get('phase_entered_at'))}  [bold]{phase}[/] "
                        f"(active {version_label(status.get('active_version'))}, "
                        f"preview {version_label(status.get('preview_version'))}){reason}"
                    )
                    if phase == "PAUSED":
                        live.console.print(
                            f"  paused: it goes on once the analysis has data; or promote it by hand with "
                            f"`{PROG} deployments promote {name} --reason ...`, or roll back with "
                            f"`{PROG} deployments rollback {name} --reason ...`"
                        )
            live.update(rollout_view(found))
            if phase in DONE_PHASES or time.monotonic() >= deadline:
                break
            time.sleep(interval)
            found = cli.api.get_deployment(name)
    phase = str((found.get("status") or {}).get("phase", ""))
    if phase not in DONE_PHASES:
        raise cli.timed_out(
            found,
            f"deployment {name} is still {phase} after {timeout:.0f} s",
            hint=f"watch it again with `{PROG} deployments watch {name}`",
        )
    cli.emit(found, lambda out: out.print(rollout_view(found)))
    if DONE_PHASES[phase] != ExitCode.OK:
        click.get_current_context().exit(int(DONE_PHASES[phase]))


@api_command(deployments, "rollback", hints=DEPLOYMENT_HINTS)
@click.argument("name")
@click.option("--reason", "-r", required=True, help="Why; recorded in the history.")
@click.option("--watch", is_flag=True, help="Then watch until the rollback ends.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --watch waits.")
def rollback(cli: Cli, name: str, reason: str, watch: bool, timeout: float) -> None:
    """Roll NAME back to its last-known-good version, with a reason."""
    result = cli.api.rollback(name, reason)
    _recorded(
        cli,
        name,
        result,
        watch,
        timeout,
        f"rolling [bold]{name}[/] back",
        lambda status: f"rolling [bold]{name}[/] back to {version_label(status.get('previous_version'))}",
    )


@api_command(deployments, "promote", hints=DEPLOYMENT_HINTS, short_help="Promote a paused rollout by hand.")
@click.argument("name")
@click.option("--reason", "-r", required=True, help="Why; recorded in the history.")
@click.option("--watch", is_flag=True, help="Then watch the rollout until it ends.")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds --watch waits.")
def promote(cli: Cli, name: str, reason: str, watch: bool, timeout: float) -> None:
    """Promote NAME past its analysis by hand, with a reason: a paused (inconclusive) or running
    pre-promotion analysis goes on to the switch, a bake to the scale-down. 4 if nothing is analysed."""
    result = cli.api.promote(name, reason)
    _recorded(
        cli,
        name,
        result,
        watch,
        timeout,
        f"promoting [bold]{name}[/] by hand",
        lambda status: f"promoting [bold]{name}[/] {version_label(status.get('target_version'))} by hand",
    )


@api_command(deployments, "abort", hints=DEPLOYMENT_HINTS, short_help="Abort a canary: weight 0 at once.")
@click.argument("name")
@click.option("--reason", "-r", required=True, help="Why; recorded in the history.")
@click.option("--watch", is_flag=True, help="Then watch until the canary is rolled back.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --watch waits.")
def abort(cli: Cli, name: str, reason: str, watch: bool, timeout: float) -> None:
    """Abort NAME's canary, with a reason: its weight returns to 0 at once and it scales down; the
    stable version never stopped serving. 4 if no canary is in progress."""
    result = cli.api.abort(name, reason)
    _recorded(
        cli,
        name,
        result,
        watch,
        timeout,
        f"aborting the canary of [bold]{name}[/]",
        lambda status: f"aborting the canary {version_label(status.get('target_version'))} of [bold]{name}[/]",
    )


@api_command(deployments, "strategy", hints=DEPLOYMENT_HINTS, short_help="Set the strategy of the next rollouts.")
@click.argument("name")
@canary_options
def strategy(cli: Cli, name: str, canary: str | None, step_pause: str | None, blue_green: bool) -> None:
    """Set how NAME's next rollouts go: --canary 10,50,100 [--step-pause 30s], or --blue-green."""
    body = strategy_body(canary, step_pause, blue_green)
    if body is None:
        raise click.UsageError("give --canary WEIGHTS [--step-pause DURATION] or --blue-green")
    result = cli.api.set_strategy(name, body)
    chosen = result.get("strategy") or {}
    steps = ", ".join(
        f"{key} {value}" for step in chosen.get("steps") or [] for key, value in step.items() if key != "analysis"
    )
    cli.emit(result, lambda out: out.print(f"[bold]{name}[/]: next rollouts by {chosen.get('type')} {steps}".rstrip()))


@api_command(deployments, "history", hints=DEPLOYMENT_HINTS, short_help="Rollouts and rollbacks; production at --at T.")
@click.argument("name")
@click.option("--at", type=Instant(), help="Also say which version served production at this time (ISO, `10m ago`).")
@click.option("--limit", default=0, help="Only the last N changes (0: all).")
def history(cli: Cli, name: str, at: str | None, limit: int) -> None:
    """Every rollout and rollback of NAME, and what served production at --at."""
    found = cli.api.get_deployment(name)
    result: dict[str, Any] = {"deployment": name, "model": found.get("model"), "history": found.get("history") or []}
    if at:
        result["production_at"] = cli.api.history(str(found.get("model")), at).get("production_at")
    cli.emit(
        result,
        lambda out: print_history(
            out, {"model_name": result["model"], **result}, limit=limit, title=f"deployment {name}: history"
        ),
    )


def _recorded(
    cli: Cli,
    name: str,
    result: dict[str, Any],
    watch: bool,
    timeout: float,
    note: str,
    summary: Callable[[dict[str, Any]], str],
) -> None:
    """An intent the API recorded (rollback, promotion): watch it to its end, or say what comes next."""
    if watch:
        cli.note(note)
        _watch(cli, name, timeout=timeout, interval=2.0)
        return
    status = result.get("status") or {}
    cli.emit(
        result,
        lambda out: out.print(f"{summary(status)} ({status.get('phase')}); watch it: {PROG} deployments watch {name}"),
    )
