"""The functions' settings: every CONTROL_* the code reads is set by Terraform (or is local-only,
or has a default meant for AWS), every one Terraform sets is read, and docs/contracts.md names
them all."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2

REPO = Path(__file__).resolve().parents[2]
# Read by the code, never set in AWS: the embedded platform's own, or defaults that suit AWS.
LOCAL_ONLY = {"CONTROL_LOCAL_STATE_DIR", "CONTROL_ALERT_TOKEN", "CONTROL_API_TOKEN"}
AWS_DEFAULTS = {"CONTROL_POLL_SECONDS", "CONTROL_ROLLOUT_DEFAULTS"}


def read_by_code() -> set[str]:
    text = (REPO / "control" / "settings.py").read_text()
    return {f"CONTROL_{name}" for name in re.findall(r'(?<![.\w])get\("([A-Z_]+)"', text)}


def set_by_terraform() -> set[str]:
    def quoted(value: str) -> str:
        return value.strip('"')

    with (REPO / "terraform" / "envs" / "example" / "main.tf").open() as handle:
        env = next(block["control_settings"] for block in hcl2.load(handle)["locals"] if "control_settings" in block)
    with (REPO / "terraform" / "modules" / "functions" / "main.tf").open() as handle:
        added = next(block["environment"] for block in hcl2.load(handle)["locals"] if "environment" in block)
    names = set(map(quoted, env)) | set(re.findall(r"CONTROL_[A-Z_]+", str(added)))
    return {name for name in names if name.startswith("CONTROL_")}


def test_terraform_sets_what_the_code_reads_and_nothing_else() -> None:
    code, terraform = read_by_code(), set_by_terraform()
    assert len(code) > 20, "the scan of control/settings.py found too little"
    assert code - LOCAL_ONLY - AWS_DEFAULTS - terraform == set(), "read by the code, never set in AWS"
    assert terraform - code == set(), "set in AWS, never read"
    assert terraform & LOCAL_ONLY == set()


def test_the_contracts_document_names_every_setting() -> None:
    documented = set(re.findall(r"CONTROL_[A-Z_]+", (REPO / "docs" / "contracts.md").read_text()))
    assert read_by_code() - documented == set()
