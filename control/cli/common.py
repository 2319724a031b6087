"""What every API command of the CLI shares: settings, output (tables or JSON), errors, times."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from control.cli.api_client import ApiClient
from control.cli.config import ENDPOINTS_ENV, ClientConfig, load_client_config
from control.cli.errors import ClientError, ExitCode

PROG = "python -m control"


class Cli:
    """One invocation: where the platform is, how to print, and the API client (built on first use)."""

    def __init__(self, endpoints_file: Path | None, as_json: bool) -> None:
        self.endpoints_file = endpoints_file
        self.as_json = as_json
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)
        self._settings: ClientConfig | None = None
        self._client: ApiClient | None = None

    @property
    def settings(self) -> ClientConfig:
        if self._settings is None:
            self._settings = load_client_config(self.endpoints_file)
        return self._settings

    @property
    def api(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.settings)
        return self._client

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """JSON for scripts (`--json`), otherwise whatever `render` prints for people."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            render(self.out)

    def timed_out(self, data: Any, message: str, hint: str) -> ClientError:
        """What a watch that ran out of time raises; with `--json`, the last state is printed first."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        return ClientError(message, ExitCode.TIMED_OUT, hint=hint, error="TimedOut")

    def note(self, text: str) -> None:
        """A line for people that never pollutes `--json` output."""
        if not self.as_json:
            self.out.print(text)

    def fail(self, error: ClientError) -> None:
        ctx = click.get_current_context()
        if self.as_json:
            click.echo(json.dumps(error.to_dict()), err=True)
        else:
            message = error.message
            if error.field and error.field not in message:
                message = f"{message} (field: {error.field})"
            self.err.print(f"[red bold]error:[/] {escape(message)}")
            if error.hint:
                self.err.print(f"  {escape(error.hint)}")
        ctx.exit(int(error.exit_code))


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def api_command(
    group: click.Group,
    name: str | None = None,
    *,
    hints: Mapping[Any, str] | None = None,
    **settings: Any,
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command that talks to the platform: adds --endpoints and --json, turns errors into exit codes.

    `hints` adds a command-specific next step to an error, by (exit code, field) or by exit code."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        @click.option(
            "--endpoints",
            "endpoints_file",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar=ENDPOINTS_ENV,
            help=f"Endpoints file written by `{PROG} up` [env {ENDPOINTS_ENV}]; without it, MLCP_API_URL "
            "and MLCP_API_TOKEN (none: SigV4 with your AWS credentials).",
        )
        @click.option("--json", "as_json", is_flag=True, help="Print JSON (the API's shapes) for scripts.")
        @functools.wraps(function)
        def command(endpoints_file: Path | None, as_json: bool, **kwargs: Any) -> Any:
            cli = Cli(endpoints_file, as_json)
            try:
                return function(cli, **kwargs)
            except ClientError as error:
                hint = (hints or {}).get((error.exit_code, error.field)) or (hints or {}).get(error.exit_code)
                if hint and not error.hint:
                    error.hint = hint
                cli.fail(error)

        made = group.command(name, **settings)(command)
        shared = [p for p in made.params if p.name in ("endpoints_file", "as_json")]
        made.params = [p for p in made.params if p not in shared] + shared  # listed last in --help
        return made

    return decorate


# -- values ---------------------------------------------------------------------------------------

RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])\s*(?:ago)?$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Instant(click.ParamType):
    """An ISO 8601 time (UTC when it has no offset), `now`, or `10m ago`; as the registry writes times."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, datetime):
            return registry_time(value)
        text = str(value).strip()
        if text == "now":
            return registry_time(datetime.now(UTC))
        relative = RELATIVE.match(text)
        if relative:
            delta = timedelta(**{UNITS[relative.group(2)]: float(relative.group(1))})
            return registry_time(datetime.now(UTC) - delta)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not a time: use ISO 8601 (2025-01-31T14:05:00Z), `now` or `10m ago`", param, ctx)
        return registry_time(parsed)


def registry_time(value: datetime) -> str:
    """The registry's own format (it compares times as strings)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VersionNumber(click.ParamType):
    """A model version: `3` or `v3`."""

    name = "VERSION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().removeprefix("v")
        if not text.isdigit() or int(text) < 1:
            self.fail(f"{value!r} is not a version number (1, 2, ... or v1, v2, ...)", param, ctx)
        return int(text)


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short_time(value: Any) -> str:
    """`2025-01-31 14:05:07` in local time: what a person compares with their clock."""
    parsed = parse_time(value)
    return "" if parsed is None else parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ago(value: Any, now: datetime | None = None) -> str:
    parsed = parse_time(value)
    if parsed is None:
        return ""
    seconds = max(0.0, ((now or datetime.now(UTC)) - parsed).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}g}"


def version_label(value: Any) -> str:
    return "-" if value is None else f"v{value}"
