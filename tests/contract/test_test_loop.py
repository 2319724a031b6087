"""The test loop stays fast and honest: `make unit` starts no service, shared helpers live in
tests/support (never imported from a test module or a conftest), `make test` checks the format
as CI runs it, and the pre-commit hooks run local tools only (nothing to download)."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
MAKEFILE = (REPO / "Makefile").read_text()
# The session fixtures of tests/conftest.py that start the embedded platform (moto, the API, Prometheus).
SERVICE_FIXTURES = {"embedded", "endpoints", "aws", "api"}


def target(name: str) -> list[str]:
    """The recipe lines of a Makefile target."""
    match = re.search(rf"^{name}:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
    assert match, f"no `{name}` target in the Makefile"
    return [line.strip() for line in match.group(1).splitlines()]


def unit_folders() -> list[Path]:
    match = re.search(r"^UNIT := (.+)$", MAKEFILE, re.MULTILINE)
    assert match, "the Makefile names the unit folders in UNIT"
    return [REPO / folder for folder in match.group(1).split()]


def test_make_unit_runs_the_unit_and_contract_folders() -> None:
    assert target("unit") == ["$(PY) -m pytest -q $(UNIT)"]
    assert {folder.relative_to(REPO).as_posix() for folder in unit_folders()} == {"tests/unit", "tests/contract"}


def test_the_service_fixtures_checked_here_are_the_ones_the_conftest_defines() -> None:
    # A renamed fixture would otherwise slip past the check below unnoticed.
    defined = {
        node.name
        for node in ast.parse((TESTS / "conftest.py").read_text()).body
        if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list)
    }
    assert SERVICE_FIXTURES - defined == set(), sorted(SERVICE_FIXTURES - defined)


def test_no_unit_or_contract_test_asks_for_a_service() -> None:
    asking = []
    for folder in unit_folders():
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                    wanted = {arg.arg for arg in node.args.args} & SERVICE_FIXTURES
                    if wanted:
                        asking.append(f"{path.relative_to(REPO)}::{node.name} uses {sorted(wanted)}")
    assert asking == [], "make unit must start no service; move these to tests/functional:\n" + "\n".join(asking)


def test_tests_import_helpers_from_the_support_package_only() -> None:
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if isinstance(node, ast.Import) else []
            )  # fmt: skip
            for name in names:
                last = name.rsplit(".", 1)[-1]
                if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert wrong == [], "shared helpers belong in tests/support:\n" + "\n".join(wrong)


def test_make_test_checks_lint_format_layers_and_types_before_the_tests() -> None:
    steps = target("test")
    assert steps == [
        "$(PY) -m ruff check .",
        "$(PY) -m ruff format --check .",
        "PYTHONPATH=functions .venv/bin/lint-imports",
        "$(PY) -m mypy",
        "$(PY) -m pytest -q",
    ]
    assert re.search(r"^test: setup$", MAKEFILE, re.MULTILINE)


def test_pre_commit_runs_ruff_format_mypy_and_terraform_fmt_with_local_tools() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # nothing fetched from a hook repository
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert {hook["language"] for hook in hooks.values()} == {"system"}
    assert hooks["ruff"]["entry"].startswith(".venv/bin/python -m ruff check")
    assert hooks["ruff-format"]["entry"].startswith(".venv/bin/python -m ruff format")
    assert hooks["mypy"]["entry"] == ".venv/bin/python -m mypy" and hooks["mypy"]["pass_filenames"] is False
    assert hooks["terraform-fmt"]["entry"] == "terraform fmt"
    assert re.search(hooks["terraform-fmt"]["files"], "terraform/envs/example/main.tf")
    assert shutil.which("terraform"), "terraform is not on the PATH (README: what a fresh machine needs)"
