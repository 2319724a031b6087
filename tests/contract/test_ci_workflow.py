"""CI as written runs on a GitHub-hosted runner and on a bare machine: the workflow is valid against
GitHub's workflow schema (check-jsonschema's copy inside its wheel, offline), it runs .ci/run
without sudo, .ci/run runs the README's test command, and nothing reads outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
# Paths that only this machine has, or the folder beside the repository.
OUTSIDE = re.compile(
    r"\.\./shared|\"\.\.\" / \"shared\"|parent / \"shared\"|/work/|/opt/(tf-plugins|wheels|pypi)|/etc/xdg"
)
OUTSIDE_ALLOWED = {
    # The offline CLI config names the mirror; tests/terraform uses it only where that folder exists.
    "terraform/terraformrc.offline.hcl",
}


def steps(workflow: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(workflow.read_text())
    return [step for job in document["jobs"].values() for step in job["steps"]]


def test_the_workflows_are_valid_against_githubs_schema() -> None:
    assert WORKFLOWS, "no workflow under .github/workflows"
    if not CHECK_JSONSCHEMA.exists():
        pytest.fail(f"{CHECK_JSONSCHEMA} is missing: check-jsonschema is in requirements.txt (scripts/setup.sh)")
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_runs_ci_run_without_sudo_after_the_setup_actions() -> None:
    for workflow in [w for w in WORKFLOWS if w.name == "ci.yml"]:  # deploy.yml and dr-drill.yml ship, not test
        runs = [step.get("run", "") for step in steps(workflow)]
        ci = [run for run in runs if ".ci/run" in run]
        assert ci == ["bash .ci/run"], f"{workflow.name}: .ci/run must run as `bash .ci/run`, got {ci}"
        uses = [step.get("uses", "").split("@")[0] for step in steps(workflow)]
        for action in ("actions/checkout", "actions/setup-python", "hashicorp/setup-terraform", "actions/setup-node"):
            assert action in uses, f"{workflow.name} does not use {action}"
        python = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/setup-python"))
        assert str(python["with"]["python-version"]) == "3.11"
        sudo = [run for run in runs if re.search(r"\bsudo\b", run) and "apt-get" not in run]
        assert not sudo, f"{workflow.name}: sudo outside the apt step: {sudo}"


def test_ci_run_checks_the_tools_then_runs_the_readmes_test_command() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "bash scripts/check_tools.sh" in commands and commands[-1] == "make test", commands
    assert commands.index("bash scripts/check_tools.sh") < commands.index("make test")


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    if listed.returncode != 0:  # not a git checkout: every file but the virtualenvs and node_modules
        return [
            p.relative_to(REPO).as_posix()
            for p in REPO.rglob("*")
            if p.is_file()
            and not {".git", "node_modules"} & set(p.parts)
            and not p.parts[len(REPO.parts)].startswith(".venv")
        ]
    return listed.stdout.splitlines()


def test_nothing_reads_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        path = REPO / name
        if name in OUTSIDE_ALLOWED or path.suffix == ".md" or path == Path(__file__) or not path.is_file():
            continue
        if (
            path.suffix not in (".py", ".sh", ".yml", ".yaml", ".hcl", ".tf", ".toml", ".json", "")
            or path.stat().st_size > 2**20
        ):
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)
