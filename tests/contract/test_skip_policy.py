"""No silent skips (tests/skip_policy.py), run for real: a throwaway test folder with one passing
and one skipping test, driven by a pytest subprocess with the plugin and an allowlist of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "skip_policy.py"
TESTS = """
import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip("the frobnicator is not installed")
"""


def run(folder: Path, *args: str, ci: bool = False, allowlist: str | None = None) -> subprocess.CompletedProcess[str]:
    shutil.copy(PLUGIN, folder / "skip_policy.py")
    (folder / "test_sample.py").write_text(TESTS)
    if allowlist is not None:
        (folder / "allowed_skips.txt").write_text(allowlist)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(folder)
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-m", "pytest", "-p", "skip_policy", "-p", "no:cacheprovider", "--rootdir", str(folder)]
    return subprocess.run(
        [*command, *args, str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_skip_is_listed_with_its_reason_and_passes_outside_ci(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_sample.py::test_needs_a_tool: the frobnicator is not installed [NOT in" in result.stdout


@pytest.mark.parametrize("how", ["CI=true", "--strict-skips"])
def test_an_unlisted_skip_fails_the_run_under_ci(tmp_path: Path, how: str) -> None:
    result = run(tmp_path, ci=how == "CI=true") if how == "CI=true" else run(tmp_path, how)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "1 skip(s) not allowed by tests/allowed_skips.txt fail this run" in result.stdout


def test_a_listed_skip_passes_under_ci_and_shows_its_reason(tmp_path: Path) -> None:
    result = run(tmp_path, ci=True, allowlist="# comment\n*::test_needs_a_tool  # no frobnicator on CI runners\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[allowed: no frobnicator on CI runners]" in result.stdout


def test_an_allowlist_line_without_a_reason_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, ci=True, allowlist="*::test_needs_a_tool\n")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "expected `nodeid-pattern  # reason`" in result.stderr


def test_the_repository_allowlist_parses() -> None:
    from tests.skip_policy import ALLOWLIST, parse_allowlist

    parse_allowlist(ALLOWLIST.read_text())
