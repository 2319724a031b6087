"""`python -m control runs ...`: start, list, show and follow training runs; their Step Functions timeline."""

from __future__ import annotations

import time
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from control.cli.common import PROG, Cli, ago, api_command, escape, number, short_time
from control.cli.errors import ClientError, ExitCode
from control.domain.timeline import Step

GATE_METRICS = ("val_accuracy", "val_loss", "train_loss")
RUNNING = "RUNNING"
DEFAULT_EPOCHS = 5
RUN_HINTS = {ExitCode.NOT_FOUND: f"list runs with `{PROG} runs list`"}


@click.group()
def runs() -> None:
    """Start, follow and inspect training runs."""


# -- start ----------------------------------------------------------------------------------------


@api_command(runs, "start", short_help="Start a training run from a dataset URI (--follow).")
@click.argument("dataset_uri")
@click.option("--epochs", type=int, help="Training epochs (API limits: 1-1000).")
@click.option("--batch-size", type=int, help="Batch size per worker.")
@click.option("--learning-rate", type=float)
@click.option("--hidden-units", type=int)
@click.option("--seed", type=int)
@click.option("--gate-metric", type=click.Choice(GATE_METRICS), help="Metric the evaluation gate checks.")
@click.option("--gate-threshold", type=float, help="Value the gate metric must reach to register the version.")
@click.option("--workers", type=int, help="Horovod workers (default 2).")
@click.option("--auto-deploy", metavar="DEPLOYMENT", help="Roll the version out to this deployment if it passes.")
@click.option("--follow", is_flag=True, help="Then follow the run until it ends (exit 1 if it fails).")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds --follow waits.")
def start_run(
    cli: Cli,
    dataset_uri: str,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    hidden_units: int | None,
    seed: int | None,
    gate_metric: str | None,
    gate_threshold: float | None,
    workers: int | None,
    auto_deploy: str | None,
    follow: bool,
    timeout: float,
) -> None:
    """Start the training pipeline for DATASET_URI (s3://<data bucket>/datasets/<model>/<version>/data.csv).

    The same dataset content with the same hyperparameters is one run: starting it again shows the
    existing run."""
    hyperparameters = {
        name: value
        for name, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
            ("hidden_units", hidden_units),
            ("seed", seed),
        )
        if value is not None
    }
    body: dict[str, Any] = {"dataset_uri": dataset_uri}
    if hyperparameters:
        body["hyperparameters"] = hyperparameters
    gate = {k: v for k, v in (("metric", gate_metric), ("threshold", gate_threshold)) if v is not None}
    if gate:
        body["gate"] = gate
    if workers is not None:
        body["workers"] = workers
    if auto_deploy:
        body["auto_deploy"] = auto_deploy
    started = cli.api.start_training_run(body)
    if follow:
        if not cli.as_json:
            _print_started(cli.out, started)
        _follow(cli, started["run_id"], timeout=timeout, interval=2.0)
        return
    cli.emit(started, lambda out: _print_started(out, started))


def _print_started(out: Console, started: dict[str, Any]) -> None:
    run_id = started["run_id"]
    if started.get("outcome") == "duplicate":
        out.print(f"run [cyan]{run_id}[/] already exists for this dataset and these settings (nothing new started)")
    else:
        out.print(f"started run [cyan]{run_id}[/] for {started.get('dataset_uri', '')}")
    out.print(f"  follow it: {PROG} runs follow {run_id}")


# -- retention ------------------------------------------------------------------------------------


@api_command(runs, "retention", short_help="Clean up staged datasets and checkpoints on EFS (--dry-run lists).")
@click.option("--keep-last", type=int, help="Per model, the newest staged datasets and runs' checkpoints to keep (3).")
@click.option("--model", help="Only this model's folders.")
@click.option("--dry-run", is_flag=True, help="Only list what would go, and why.")
def retention(cli: Cli, keep_last: int | None, model: str | None, dry_run: bool) -> None:
    """Apply the retention policy to the checkpoint file system: per model, keep the newest staged
    dataset revisions and runs' checkpoints, and whatever a registered model version was trained from."""
    body: dict[str, Any] = {"dry_run": dry_run}
    if keep_last is not None:
        body["keep_last"] = keep_last
    if model:
        body["model"] = model
    result = cli.api.apply_retention(body)

    def render(out: Console) -> None:
        gone = result.get("would_remove" if dry_run else "removed") or []
        verb = "would remove" if dry_run else "removed"
        table = Table(title=f"retention: {verb} {len(gone)}", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("path", overflow="fold")
        table.add_column("kind", no_wrap=True)
        table.add_column("decision", no_wrap=True)
        table.add_column("why", overflow="fold", ratio=1)
        for decision in [*gone, *(result.get("kept") or [])]:
            action = verb if decision["remove"] else "keep"
            table.add_row(escape(decision["path"]), decision["kind"], action, escape(decision["reason"]))
        out.print(table)

    cli.emit(result, render)


# -- list and show --------------------------------------------------------------------------------


def run_id_of(run: dict[str, Any]) -> str:
    return str(run.get("run_id") or (run.get("request") or {}).get("run_id") or "")


@api_command(runs, "list")
@click.option("--model", help="Only runs of this model.")
@click.option("--status", help="Only runs in this status (VALIDATING, TRAINING, EVALUATED, REGISTERED, FAILED).")
@click.option("--limit", default=50, show_default=True, help="Newest first, at most this many.")
def list_runs(cli: Cli, model: str | None, status: str | None, limit: int) -> None:
    """Training runs, newest first."""
    found = []
    for run in cli.api.list_training_runs():
        if "run_id" not in run and run_id_of(run):  # the list's items may lack their id; the request has it
            run = {"run_id": run_id_of(run), **run}
        if model and run.get("model_name") != model:
            continue
        if status and str(run.get("status", "")).upper() != status.upper():
            continue
        found.append(run)
    found.sort(key=lambda r: str(r.get("created_at") or r.get("updated_at") or ""), reverse=True)
    found = found[:limit]

    def render(out: Console) -> None:
        if not found:
            out.print(f"no training runs yet; start one with `{PROG} runs start s3://.../data.csv`")
            return
        table = Table(title="training runs", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("run", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("started", no_wrap=True)
        table.add_column("failure cause", overflow="fold", ratio=1)
        for run in found:
            version = f" v{run['model_version']}" if run.get("model_version") else ""
            table.add_row(
                run_id_of(run),
                _status(run.get("status")) + version,
                ago(run.get("created_at")),
                escape(str(run.get("cause") or "")),
            )
        out.print(table)

    cli.emit(found, render)


@api_command(runs, "show", hints=RUN_HINTS)
@click.argument("run_id")
def show_run(cli: Cli, run_id: str) -> None:
    """A run: state, metrics, registered version, failure cause."""
    run = cli.api.get_training_run(run_id)
    cli.emit(run, lambda out: print_run(out, run))


def print_run(out: Console, run: dict[str, Any]) -> None:
    execution = run.get("execution") or {}
    request = run.get("request") or {}
    table = Table(title=f"run {run.get('run_id', '')}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("model", run.get("model_name")),
        ("status", _status(run.get("status"))),
        ("execution", _status(execution.get("status"))),
        ("dataset", run.get("dataset_uri")),
        ("started", short_time(run.get("created_at") or execution.get("started_at"))),
        ("stopped", short_time(execution.get("stopped_at"))),
        ("job", run.get("job_name")),
        ("hyperparameters", _compact(request.get("hyperparameters"))),
        ("gate", _gate(request.get("gate"), run.get("gate_passed"))),
        ("workers", request.get("workers")),
        ("auto-deploy", request.get("auto_deploy")),
        ("version", f"{run.get('model_name')} v{run['model_version']}" if run.get("model_version") else None),
    ]
    for name, value in sorted((run.get("metrics") or {}).items()):
        rows.append((f"metric {name}", number(value)))
    rows += resource_rows(run)
    cause = run.get("cause") or execution.get("cause")
    if cause or run.get("error"):
        rows.append(("failed", f"[red]{escape(str(run.get('error') or execution.get('error') or ''))}[/]"))
        rows.append(("cause", escape(str(cause or ""))))
    rows.append(("execution arn", execution.get("execution_arn")))
    for name, value in rows:
        if value not in (None, "", {}):
            table.add_row(name, str(value))
    out.print(table)


def resource_rows(run: dict[str, Any]) -> list[tuple[str, Any]]:
    """What each worker requested, what it used, and what the model's next run will request."""
    rows: list[tuple[str, Any]] = []
    requested = run.get("resources") or {}
    if requested:
        source = (run.get("resources_source") or {}).get("source", "")
        origin = (run.get("resources_source") or {}).get("from_run", "")
        rows.append(
            (
                "requested",
                f"{requested.get('cpu_millicores')}m CPU, {requested.get('memory_mib')} MiB, "
                f"{requested.get('scratch_gib')} GiB scratch per worker"
                + (f" ({source}{' by ' + origin if origin else ''})" if source else ""),
            )
        )
    for worker in run.get("usage") or []:
        rows.append(
            (
                f"used worker {worker.get('worker')}",
                f"CPU p90 {worker.get('cpu_p90_cores')} cores (max {worker.get('cpu_max_cores')}), "
                f"memory peak {worker.get('memory_peak_mib')} MiB, {worker.get('samples')} samples",
            )
        )
    recommendation = run.get("recommendation") or {}
    if recommendation:
        text = f"{recommendation.get('cpu_millicores')}m CPU, {recommendation.get('memory_mib')} MiB"
        capped = recommendation.get("capped") or []
        if capped:
            uncapped, cap = recommendation.get("uncapped") or {}, recommendation.get("cap") or {}
            text += "; [yellow]capped[/] at a training node's allocatable: " + ", ".join(
                f"{name} {uncapped.get(name)} → {cap.get(name)}" for name in capped
            )
        rows.append(("recommended", text + f" ({recommendation.get('rule', '')})"))
    return rows


def _status(value: Any) -> str:
    text = str(value or "")
    colour = {"FAILED": "red", "SUCCEEDED": "green", "REGISTERED": "green", "ABORTED": "red", "TIMED_OUT": "red"}
    return f"[{colour[text]}]{text}[/]" if text in colour else text


def _compact(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return ""
    return ", ".join(f"{k}={v}" for k, v in value.items())


def _gate(gate: Any, passed: Any) -> str:
    if not isinstance(gate, dict) or not gate:
        return ""
    verdict = "" if passed is None else (" [green]passed[/]" if passed else " [red]not met[/]")
    return f"{gate.get('metric')} threshold {gate.get('threshold')}{verdict}"


# -- Step Functions timeline ----------------------------------------------------------------------


@api_command(runs, "timeline", hints=RUN_HINTS)
@click.argument("run_id")
@click.option("--all", "show_all", is_flag=True, help="Every step; by default repeated polling states are folded.")
def timeline(cli: Cli, run_id: str, show_all: bool) -> None:
    """A run's Step Functions execution history as a readable timeline."""
    run = cli.api.get_training_run(run_id)
    arn = (run.get("execution") or {}).get("execution_arn")
    if not arn:
        raise ClientError(f"run {run_id!r} has no Step Functions execution", ExitCode.NOT_FOUND)
    steps = cli.api.run_timeline(run_id)
    start = steps[0].at if steps else None
    data = [
        {
            "at": step.at.isoformat(),
            "elapsed_seconds": round((step.at - start).total_seconds(), 3) if start else 0.0,
            "state": step.state,
            "event": step.event,
            "detail": step.detail,
        }
        for step in steps
    ]
    cli.emit(
        {"run_id": run_id, "execution_arn": arn, "steps": data},
        lambda out: print_timeline(out, run_id, steps, fold=not show_all),
    )


def fold_repeats(steps: list[Step]) -> list[tuple[Step, int, Step]]:
    """(first, count, last) per row: a state entered again (a polling loop) joins its first row."""
    rows: list[tuple[Step, int, Step]] = []
    index: dict[str, int] = {}
    for step in steps:
        if step.event == "entered" and step.state in index:
            first, count, _ = rows[index[step.state]]
            rows[index[step.state]] = (first, count + 1, step)
            continue
        if step.event == "entered":
            index[step.state] = len(rows)
        rows.append((step, 1, step))
    return rows


def print_timeline(out: Console, run_id: str, steps: list[Step], *, fold: bool = True) -> None:
    if not steps:
        out.print(f"run {run_id}: no history yet")
        return
    start = steps[0].at
    rows = fold_repeats(steps) if fold else [(step, 1, step) for step in steps]
    table = Table(title=f"run {run_id}: Step Functions timeline", title_justify="left")
    table.add_column("time")
    table.add_column("t+ (s)", justify="right")
    table.add_column("state")
    table.add_column("event")
    table.add_column("detail", overflow="fold")
    for first, count, last in rows:
        event = first.event
        colour = {"failed": "red", "succeeded": "green", "aborted": "red", "timedout": "red"}.get(event, "")
        label = f"[{colour}]{event}[/]" if colour else event
        if count > 1:
            label += f" ×{count} (last t+{(last.at - start).total_seconds():.1f}s)"
        table.add_row(
            first.at.astimezone().strftime("%H:%M:%S"),
            f"{(first.at - start).total_seconds():.1f}",
            first.state or "execution",
            label,
            escape(first.detail),
        )
    out.print(table)


# -- follow ---------------------------------------------------------------------------------------


@api_command(runs, "follow", hints=RUN_HINTS, short_help="Follow a run live: state, epoch, loss, samples/s.")
@click.argument("run_id")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait before giving up (exit 7).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def follow_run(cli: Cli, run_id: str, timeout: float, interval: float) -> None:
    """Follow a run live: the pipeline state it is in and training progress (epoch, loss, samples/s).

    Exits 0 when the run succeeds, 1 when it fails (with the cause), 7 on --timeout."""
    _follow(cli, run_id, timeout=timeout, interval=interval)


def _follow(cli: Cli, run_id: str, *, timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    watcher = RunWatcher(cli, run_id)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        console=cli.out,
        transient=True,
        disable=cli.as_json,
    )
    with progress:
        task = progress.add_task(f"run {run_id}", total=None, metrics="")
        while True:
            watcher.poll()
            for step in watcher.new_steps():
                if not cli.as_json:
                    progress.console.print(_step_line(step))
            progress.update(task, description=watcher.describe(), metrics=watcher.metrics_text(), **watcher.bar())
            if watcher.finished or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    run = watcher.run
    if not watcher.finished:
        raise cli.timed_out(
            run,
            f"run {run_id} is still {watcher.state_name()} after {timeout:.0f} s",
            hint=f"follow it again with `{PROG} runs follow {run_id}`",
        )
    cli.emit(run, lambda out: _print_outcome(out, run, watcher))
    if watcher.execution_status != "SUCCEEDED":
        click.get_current_context().exit(int(ExitCode.FAILED))


def _step_line(step: Step) -> str:
    colour = {"failed": "red", "succeeded": "green"}.get(step.event, "white")
    detail = f" {escape(step.detail)}" if step.detail else ""
    return f"  {step.at.astimezone():%H:%M:%S}  [{colour}]{step.state or 'execution'} {step.event}[/]{detail}"


def _print_outcome(out: Console, run: dict[str, Any], watcher: RunWatcher) -> None:
    if watcher.last_progress is not None and watcher.last_progress.known and not run.get("metrics"):
        p = watcher.last_progress
        out.print(
            f"  last epoch {number(p.epoch)}: train loss {number(p.train_loss)}, val loss {number(p.val_loss)}, "
            f"{number(p.samples_per_second, 5)} samples/s"
        )
    print_run(out, run)
    if watcher.execution_status == "SUCCEEDED":
        model, version = run.get("model_name"), run.get("model_version")
        if version:
            out.print(f"[green bold]registered {model} v{version}[/]; see `{PROG} models show {model} {version}`")
        else:
            out.print("[green bold]run succeeded[/]")
    else:
        cause = run.get("cause") or (run.get("execution") or {}).get("cause") or "no cause recorded"
        out.print(f"[red bold]run {watcher.execution_status.lower()}:[/] {escape(str(cause))}")


class RunWatcher:
    """Polls the API (state), Step Functions (which step) and Prometheus (training progress).

    Step Functions or Prometheus out of reach: the API's state alone is shown, said once."""

    def __init__(self, cli: Cli, run_id: str) -> None:
        self.cli = cli
        self.run_id = run_id
        self.run: dict[str, Any] = {}
        self.steps: list[Step] = []
        self._shown = 0
        self.history_error = ""
        self.last_progress: Any = None

    @property
    def execution(self) -> dict[str, Any]:
        return self.run.get("execution") or {}

    @property
    def execution_status(self) -> str:
        return str(self.execution.get("status") or "PENDING")

    @property
    def finished(self) -> bool:
        return bool(self.execution) and self.execution_status != RUNNING

    def poll(self) -> None:
        self.run = self.cli.api.get_training_run(self.run_id)
        arn = self.execution.get("execution_arn")
        if arn and not self.history_error:
            try:
                self.steps = self.cli.api.run_timeline(self.run_id)
            except ClientError as error:
                self.history_error = error.message
                if not self.cli.as_json:
                    self.cli.err.print(f"[yellow]no step detail ({escape(error.message)}); showing the run's state")
        if self.run.get("status") == "TRAINING" and not self.finished:
            progress = self.cli.api.training_progress(self.run_id)
            if progress is not None and progress.known:
                self.last_progress = progress

    def new_steps(self) -> list[Step]:
        fresh = []
        seen = {(s.state, s.event) for s in self.steps[: self._shown] if s.event == "entered"}
        for step in self.steps[self._shown :]:
            key = (step.state, step.event)
            if step.event != "entered" or key not in seen:  # a polling loop's repeats are not news
                fresh.append(step)
                seen.add(key)
        self._shown = len(self.steps)
        return fresh

    def current_state(self) -> str:
        entered = [s.state for s in self.steps if s.event == "entered"]
        return entered[-1] if entered else ""

    def state_name(self) -> str:
        return self.current_state() or str(self.run.get("status") or self.execution_status)

    def describe(self) -> str:
        status = self.run.get("status") or self.execution_status
        state = self.current_state()
        return f"{status} · {state}" if state and state.upper() != str(status).upper() else str(status)

    def epochs(self) -> int:
        hyperparameters = (self.run.get("request") or {}).get("hyperparameters") or {}
        return int(hyperparameters.get("epochs") or DEFAULT_EPOCHS)

    def bar(self) -> dict[str, Any]:
        if self.last_progress is None or not self.last_progress.known:
            return {"total": None}
        return {"total": self.epochs(), "completed": self.last_progress.epoch}

    def metrics_text(self) -> str:
        p = self.last_progress
        if p is None or not p.known:
            return ""
        return (
            f"epoch {number(p.epoch)}/{self.epochs()}  loss {number(p.train_loss)} (val {number(p.val_loss)})  "
            f"{number(p.samples_per_second, 5)} samples/s"
        )
