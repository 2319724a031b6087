"""`python -m control dr`: back up and restore the registry, and run the disaster-recovery drill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from control.cli.common import Cli, api_command, escape
from control.cli.errors import ClientError, ExitCode
from control.errors import Conflict, ControlError, InvalidInput, NotFound, PreconditionFailed

EXIT_CODES = {InvalidInput: ExitCode.INVALID, NotFound: ExitCode.NOT_FOUND, Conflict: ExitCode.CONFLICT}


@click.group()
def dr() -> None:
    """Disaster recovery: registry export/import and the restore drill (RTO/RPO measured)."""


def _environment(cli: Cli) -> Any:
    from control.dr import Environment

    if cli.endpoints_file is None:
        raise ClientError(
            "dr commands read the platform's data stores from its endpoints file",
            ExitCode.INVALID,
            hint="pass --endpoints endpoints.json (`python -m control up` writes one; in AWS, from terraform output)",
        )
    cli.settings  # noqa: B018 - the same checks and messages as every command
    return Environment.read(cli.endpoints_file)


def _as_client_error(error: ControlError) -> ClientError:
    code = next((c for kind, c in EXIT_CODES.items() if isinstance(error, kind)), ExitCode.UNAVAILABLE)
    if isinstance(error, PreconditionFailed):
        code = ExitCode.FAILED
    return ClientError(error.message, code, error=error.code, field=error.field)


@api_command(dr, "export")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Backup folder.")
def export(cli: Cli, out: Path) -> None:
    """Export the registry table (versions, lineage, history, runs, deployments) to a folder."""
    from control.adapters.registry_backup import export_table

    environment = _environment(cli)
    try:
        manifest = export_table(environment.aws("dynamodb"), environment.table, out)
    except ControlError as error:
        raise _as_client_error(error) from error
    cli.emit(
        manifest.__dict__,
        lambda out_: out_.print(
            f"{manifest.items} items of {manifest.table} → {out} (snapshot {manifest.snapshot_at})"
        ),
    )


@api_command(dr, "import")
@click.option("--backup", type=click.Path(file_okay=False, path_type=Path), required=True)
def import_(cli: Cli, backup: Path) -> None:
    """Import a backup folder into the platform's registry table, which must be empty."""
    from control.adapters.registry_backup import import_table

    environment = _environment(cli)
    try:
        written = import_table(environment.aws("dynamodb"), environment.table, backup)
    except ControlError as error:
        raise _as_client_error(error) from error
    cli.emit(
        {"items": written, "table": environment.table}, lambda o: o.print(f"{written} items → {environment.table}")
    )


@api_command(dr, "drill")
@click.option(
    "--backup",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Restore this backup (RPO: its age); default: export the platform now.",
)
@click.option(
    "--target",
    "target_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Endpoints file of an empty platform to restore into; default: start a fresh embedded one.",
)
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--redeploy-timeout", type=float, default=300, show_default=True)
def drill(
    cli: Cli, backup: Path | None, target_file: Path | None, work_dir: Path | None, redeploy_timeout: float
) -> None:
    """Restore the registry and artifacts into a fresh environment, verify every version's lineage,
    sha256 and history, redeploy each deployment's last-known-good, send it a prediction, and
    report the measured RTO and RPO against the stated targets. Exit 1 on any problem."""
    from control.demo.training import state_dir_for
    from control.dr import Drill, DrillFailed, Environment

    source = _environment(cli)
    work_dir = work_dir or state_dir_for("dr-drill")
    work_dir.mkdir(parents=True, exist_ok=True)
    runner = Drill(work_dir, say=cli.note, redeploy_timeout=redeploy_timeout)
    target = Environment.read(target_file) if target_file else None
    try:
        report = runner.run(source, backup, target)
    except DrillFailed as failed:
        (work_dir / "drill-report.json").write_text(json.dumps(failed.report.to_dict(), indent=2) + "\n")
        for problem in failed.problems:
            cli.note(f"[red]✗[/] {escape(str(problem))}")
        raise ClientError(
            failed.message, ExitCode.FAILED, error="DrillFailed", hint=f"report: {work_dir / 'drill-report.json'}"
        ) from failed
    except ControlError as error:
        raise _as_client_error(error) from error
    body = report.to_dict()
    (work_dir / "drill-report.json").write_text(json.dumps(body, indent=2) + "\n")
    cli.emit(body, lambda out: _render(out, body))


def _render(out: Any, body: dict[str, Any]) -> None:
    out.print(
        f"restored {body['items_restored']} items, {body['objects_copied']} objects; "
        f"verified {body['versions_verified']} versions"
    )
    for phase, seconds in body["phases"].items():
        out.print(f"  {phase:<40} {seconds:8.1f} s")
    out.print(
        f"RTO {body['rto_seconds']:.1f} s (target {body['rto_target_seconds']:.0f} s, met: {body['rto_met']}); "
        f"RPO {body['rpo_seconds']:.1f} s (target {body['rpo_target_seconds']:.0f} s, met: {body['rpo_met']}); "
        f"lost changes: {body['lost_changes']}"
    )
