"""No silent skips: every skip is listed with its reason at the end of the run, and under CI
(CI=true) or --strict-skips a skip that tests/allowed_skips.txt does not allow fails the run.

tests/allowed_skips.txt holds one `nodeid-pattern  # reason` a line (fnmatch patterns against
the test's node id, e.g. `tests/e2e/test_gpu.py::*  # no GPU on the CI runner`); blank lines and
lines starting with # are ignored. A pattern without a reason is an error.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).resolve().parent / "allowed_skips.txt"


@dataclass(frozen=True)
class AllowedSkip:
    pattern: str
    reason: str


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str


def parse_allowlist(text: str, source: str = "tests/allowed_skips.txt") -> list[AllowedSkip]:
    allowed = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, _, reason = line.partition("#")
        if not pattern.strip() or not reason.strip():
            raise pytest.UsageError(f"{source}:{number}: expected `nodeid-pattern  # reason`, got {line.strip()!r}")
        allowed.append(AllowedSkip(pattern.strip(), reason.strip()))
    return allowed


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class SkipPolicy:
    def __init__(self, allowed: list[AllowedSkip], strict: bool) -> None:
        self.allowed, self.strict = allowed, strict
        self.skips: list[Skip] = []

    def allowed_by(self, skip: Skip) -> AllowedSkip | None:
        return next((a for a in self.allowed if fnmatch.fnmatchcase(skip.nodeid, a.pattern)), None)

    def unexplained(self) -> list[Skip]:
        return [s for s in self.skips if self.allowed_by(s) is None]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skips.append(Skip(report.nodeid, skip_reason(report)))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.skips.append(Skip(report.nodeid, skip_reason(report)))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.strict and self.unexplained() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.skips:
            return
        terminalreporter.section(f"skipped: {len(self.skips)}")
        for skip in self.skips:
            allowed = self.allowed_by(skip)
            why = f"allowed: {allowed.reason}" if allowed else "NOT in tests/allowed_skips.txt"
            terminalreporter.line(f"SKIPPED {skip.nodeid}: {skip.reason} [{why}]")
        unexplained = self.unexplained()
        if unexplained and self.strict:
            terminalreporter.line(
                f"{len(unexplained)} skip(s) not allowed by tests/allowed_skips.txt fail this run "
                "(CI=true or --strict-skips): install what they need, or list them there with the reason",
                red=True,
                bold=True,
            )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--strict-skips",
        action="store_true",
        help="fail the run on any skip not allowed by tests/allowed_skips.txt (always on when CI=true)",
    )


def pytest_configure(config: pytest.Config) -> None:
    strict = bool(config.getoption("--strict-skips")) or os.environ.get("CI", "").lower() == "true"
    allowed = parse_allowlist(ALLOWLIST.read_text()) if ALLOWLIST.exists() else []
    config.pluginmanager.register(SkipPolicy(allowed, strict), "mlcp-skip-policy")
