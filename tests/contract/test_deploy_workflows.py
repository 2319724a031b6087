"""The deploy pipeline and the DR drill workflow: every script they run is in the repository,
every action is pinned by a full commit SHA (with its tag in a comment), credentials come from
OIDC (no stored AWS keys), and apply runs only on main behind the production environment.
The schema check of every workflow is in test_ci_workflow.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = [REPO / ".github" / "workflows" / name for name in ("deploy.yml", "dr-drill.yml")]
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
SCRIPT = re.compile(r"(?:bash|sh)\s+((?:scripts|\.ci)/[\w./-]+)")


def jobs(workflow: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(workflow.read_text())["jobs"])


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_every_action_is_pinned_by_commit_and_every_script_exists(workflow: Path) -> None:
    text = workflow.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses, "no action used"
    for action, comment in uses:
        assert PINNED.match(action), f"{workflow.name}: {action} is not pinned by a 40-hex commit"
        assert re.search(r"#\s*v\d", comment), f"{workflow.name}: {action} has no `# vX.Y.Z` comment"
    scripts = set(SCRIPT.findall(text))
    assert scripts, "the workflow runs no script from the repository"
    for script in sorted(scripts):
        assert (REPO / script).is_file(), f"{workflow.name} runs {script}, which does not exist"
        syntax = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{script}: {syntax.stderr}"


def test_the_deploy_uses_oidc_and_applies_only_on_main_behind_the_environment() -> None:
    workflow = WORKFLOWS[0]
    text = workflow.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, "no stored AWS keys"
    deploy = jobs(workflow)["deploy"]
    assert deploy["environment"] == "production" and deploy["if"] == "github.event_name == 'push'"
    assert deploy["permissions"]["id-token"] == "write"
    runs = [step.get("run", "") for step in deploy["steps"]]
    order = ["terraform_deploy.sh apply", "deploy_chart.sh", "smoke_test.sh", "rollback_deploy.sh"]
    positions = [next(i for i, run in enumerate(runs) if name in run) for name in order]
    assert positions == sorted(positions), "apply → helm upgrade → smoke test → rollback"
    rollback = next(step for step in deploy["steps"] if "rollback_deploy.sh" in step.get("run", ""))
    assert "failure()" in rollback["if"] and "steps.smoke" in rollback["if"]
    plan = jobs(workflow)["plan"]
    assert plan["if"] == "github.event_name == 'pull_request'" and "environment" not in plan
    assert any("terraform_deploy.sh plan" in step.get("run", "") for step in plan["steps"])
    on = yaml.safe_load(text)[True]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"] and "pull_request" in on


def test_the_drill_is_scheduled() -> None:
    on = yaml.safe_load(WORKFLOWS[1].read_text())[True]
    assert on["schedule"] and "workflow_dispatch" in on


def test_image_builds_record_digests_with_sbom(tmp_path: Path) -> None:
    dry = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_images.sh")],
        env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1", "REGISTRY": "r.example/mlcp", "TAG": "abc", "OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("--sbom=true --provenance=mode=max --push") == 2
    digests = yaml.safe_load((tmp_path / "images.json").read_text())
    assert set(digests) == {"training", "inference"}
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in digests.values())
