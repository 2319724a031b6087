"""`python -m control models ...`: the registry: models, versions with lineage, decisions, history."""

from __future__ import annotations

from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from control.cli.common import PROG, Cli, Instant, VersionNumber, ago, api_command, escape, number, short_time
from control.cli.errors import ExitCode

MODEL_HINTS = {ExitCode.NOT_FOUND: f"list models with `{PROG} models list`"}
HEADLINE_METRICS = ("val_accuracy", "val_loss")


@click.group()
def models() -> None:
    """The registry: versions, lineage, approvals, history."""


@api_command(models, "list")
def list_models(cli: Cli) -> None:
    """Every model: latest version and aliases (production, previous)."""
    found = sorted(cli.api.list_models(), key=lambda m: str(m.get("model_name")))

    def render(out: Console) -> None:
        if not found:
            out.print("no models registered yet; a training run that passes its gate registers one")
            return
        table = Table(title="models", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("model", "latest", "aliases", "updated"):
            table.add_column(column)
        for model in found:
            table.add_row(
                str(model.get("model_name")),
                f"v{model.get('latest_version')}",
                _aliases(model.get("aliases")),
                ago(model.get("updated_at")),
            )
        out.print(table)

    cli.emit(found, render)


def _aliases(aliases: Any) -> str:
    if isinstance(aliases, dict):
        return ", ".join(f"{name}=v{version}" for name, version in sorted(aliases.items()))
    if isinstance(aliases, list):
        return ", ".join(str(a) for a in aliases)
    return ""


@api_command(models, "versions", hints=MODEL_HINTS, short_help="A model's versions with lineage.")
@click.argument("model")
def list_versions(cli: Cli, model: str) -> None:
    """A model's versions with lineage: the run, dataset and artifact each came from."""
    versions = cli.api.list_versions(model)

    def render(out: Console) -> None:
        if not versions:
            out.print(f"{model} has no versions")
            return
        table = Table(
            title=f"{model}: versions (full lineage: `{PROG} models show {model} N`)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for column in ("version", "status", "registered", "run", "dataset", *HEADLINE_METRICS):
            table.add_column(column, no_wrap=column in ("version", "run"))
        for version in versions:
            lineage = version.get("lineage") or {}
            metrics = lineage.get("metrics") or {}
            table.add_row(
                f"v{version['version']}",
                " ".join([_status(version.get("status")), *version.get("aliases", [])]),
                ago(version.get("created_at")),
                str(lineage.get("training_run_id", "")),
                dataset_version(str(lineage.get("dataset_uri", ""))),
                *(number(metrics.get(name)) for name in HEADLINE_METRICS),
            )
        out.print(table)

    cli.emit(versions, render)


def dataset_version(uri: str) -> str:
    """`s3://bucket/datasets/churn/v3/data.csv` → `churn/v3`: the full URI is in `models show`."""
    parts = uri.split("/")
    if len(parts) >= 7 and parts[3] == "datasets":
        return f"{parts[4]}/{parts[5]}"
    return uri


def _status(value: Any) -> str:
    text = str(value or "")
    colour = {"approved": "green", "deployed": "bold green", "rejected": "red", "retired": "dim"}.get(text.lower())
    return f"[{colour}]{text}[/]" if colour else text


@api_command(models, "show", hints=MODEL_HINTS)
@click.argument("model")
@click.argument("version", type=VersionNumber())
def show_version(cli: Cli, model: str, version: int) -> None:
    """One version: status, aliases and its full lineage."""
    found = cli.api.get_version(model, version)
    cli.emit(found, lambda out: print_version(out, found))


def print_version(out: Console, version: dict[str, Any]) -> None:
    lineage = version.get("lineage") or {}
    table = Table(
        title=f"{version.get('model_name')} v{version.get('version')}", title_justify="left", show_header=False
    )
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("status", _status(version.get("status")))
    if version.get("aliases"):
        table.add_row("aliases", ", ".join(version["aliases"]))
    table.add_row("registered", short_time(version.get("created_at")))
    table.add_row("updated", short_time(version.get("updated_at")))
    for name, value in lineage.items():
        if name in ("metrics", "hyperparameters") or value in (None, "", {}):
            continue
        table.add_row(name.replace("_", " "), escape(str(value)))
    for name, value in sorted((lineage.get("hyperparameters") or {}).items()):
        table.add_row(f"hyperparameter {name}", str(value))
    for name, value in sorted((lineage.get("metrics") or {}).items()):
        table.add_row(f"metric {name}", number(value))
    out.print(table)


def _decide(decision: str, reason_required: bool) -> None:
    @api_command(models, decision, hints=MODEL_HINTS)
    @click.argument("model")
    @click.argument("version", type=VersionNumber())
    @click.option("--reason", "-r", required=reason_required, help="Why; recorded in the model's history.")
    def command(cli: Cli, model: str, version: int, reason: str | None) -> None:
        updated = cli.api.decide(model, version, decision, reason or "")

        def render(out: Console) -> None:
            out.print(f"{model} v{version} is now {_status(updated.get('status'))}")
            if decision == "approve":
                out.print(f"  deploy it: {PROG} deployments deploy DEPLOYMENT --model {model} --version {version}")

        cli.emit(updated, render)

    command.help = (
        f"{decision.capitalize()} MODEL VERSION{' with a reason' if reason_required else ''}; "
        "recorded in the model's history."
    )
    command.short_help = f"{decision.capitalize()} a version, with a reason."


_decide("approve", reason_required=False)
_decide("reject", reason_required=True)


@api_command(models, "history", hints=MODEL_HINTS, short_help="Every change to a model; production at --at T.")
@click.argument("model")
@click.option("--at", type=Instant(), help="Also say which version served production at this time (ISO, `10m ago`).")
@click.option("--limit", default=0, help="Only the last N changes (0: all).")
def history(cli: Cli, model: str, at: str | None, limit: int) -> None:
    """Every change to MODEL (registered, approved, rolled out, rolled back, ...), oldest first."""
    found = cli.api.history(model, at)
    if not found.get("history"):
        cli.api.list_versions(model)  # the history route answers an unknown model with []: say it is unknown
    cli.emit(found, lambda out: print_history(out, found, limit=limit, title=f"{model}: history"))


def print_history(out: Console, found: dict[str, Any], *, limit: int = 0, title: str) -> None:
    entries = sorted(found.get("history") or [], key=lambda e: str(e.get("at")))
    if limit > 0:
        entries = entries[-limit:]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("time", no_wrap=True)
    for column in ("version", "action", "actor"):
        table.add_column(column)
    table.add_column("reason", overflow="fold", ratio=2)
    for entry in entries:
        table.add_row(
            short_time(entry.get("at")),
            "" if entry.get("version") is None else f"v{entry['version']}",
            str(entry.get("action", "")),
            str(entry.get("actor", "")),
            escape(str(entry.get("reason", ""))),
        )
    if entries:
        out.print(table)
    else:
        out.print(f"{title}: no changes recorded")
    production = found.get("production_at")
    if production:
        model = found.get("model_name", "")
        version = production.get("version")
        when = short_time(production.get("at"))
        if version is None:
            out.print(f"at {when} no version of {model} served production")
        else:
            out.print(f"at {when} production of {model} was [bold]v{version}[/]")
