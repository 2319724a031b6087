"""The values terraform/addons gives each Helm release, evaluated by the real `terraform` binary.

The addons root needs the helm provider, which cannot be downloaded offline, so it cannot be
planned here. Its `locals` and each release's `values` expressions are copied (python-hcl2) into a
root with no provider, next to symlinks to the repository's `dashboards/`, `terraform/charts/` and `terraform/modules/`
(so `path.module` resolves as in the real root), with the platform's remote state replaced by
PLATFORM_OUTPUTS; `terraform apply` of that root outputs every release's values as JSON: what
`helm_release.values` receives, with every `file()`, `templatefile()` and `yamlencode()` applied.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hcl2
import yaml

REPO = Path(__file__).resolve().parents[2]
ADDONS = REPO / "terraform" / "addons"
REGION = "eu-west-1"

# The platform outputs the addons read (terraform/envs/example/outputs.tf), with test values.
PLATFORM_OUTPUTS: dict[str, Any] = {
    "eks_cluster_name": "mlcp-ci",
    "eks_cluster_endpoint": "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
    "eks_cluster_certificate_authority": "Q0E=",
    "irsa_role_arns": {
        name: f"arn:aws:iam::123456789012:role/mlcp-ci-{name.replace('_', '-')}"
        for name in (
            "training",
            "inference",
            "alertmanager",
            "cluster_autoscaler",
            "load_balancer_controller",
            "ebs_csi",
            "efs_csi",
            "cloudwatch_exporter",
        )
    },
    "alerts_topic_arn": "arn:aws:sns:eu-west-1:123456789012:mlcp-ci-alerts",
    "control_plane_group": "mlcp:control-plane",
    "checkpoints": {
        "claim_name": "training-checkpoints",
        "file_system_id": "fs-0123456789abcdef0",
        "access_point_id": "fsap-0123456789abcdef0",
        "volume_handle": "fs-0123456789abcdef0::fsap-0123456789abcdef0",
    },
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_cidr": "10.0.0.0/16",
    "region": REGION,
}


def _expression(value: Any) -> str:
    """python-hcl2's parsed value written back as an HCL expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value  # a quoted template literal, kept as written
    if isinstance(value, list):
        return "[" + ", ".join(_expression(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(_unquote(k))} = {_expression(v)}" for k, v in value.items() if not k.startswith("__"))
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write {value!r} back as HCL")


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def releases() -> dict[str, dict[str, Any]]:
    """The helm_release blocks of terraform/addons/main.tf, by resource name (python-hcl2 form)."""
    doc = hcl2.load((ADDONS / "main.tf").open())
    return {
        _unquote(name): body
        for block in doc["resource"]
        for kind, items in block.items()
        if _unquote(kind) == "helm_release"
        for name, body in items.items()
    }


def _root() -> str:
    doc = hcl2.load((ADDONS / "main.tf").open())
    local_values = {k: v for block in doc.get("locals", []) for k, v in block.items() if not k.startswith("__")}
    local_values["platform"] = "${jsondecode(" + json.dumps(json.dumps(PLATFORM_OUTPUTS)) + ")}"
    lines = ["locals {"] + [f"  {name} = {_expression(value)}" for name, value in local_values.items()] + ["}"]
    outputs = {
        name: [_expression(v) for v in body.get("values", [])] for name, body in releases().items() if "values" in body
    }
    lines.append('output "values" {')
    lines.append("  value = {")
    lines += [f"    {name} = [{', '.join(exprs)}]" for name, exprs in outputs.items()]
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


@functools.cache
def release_values() -> dict[str, dict[str, Any]]:
    """Each release's values, as Helm receives them (its `values` documents merged in order)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        raise RuntimeError("the terraform binary is not on PATH (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="mlcp-addons-") as tmp:
        work = Path(tmp)
        (work / "terraform").mkdir()
        os.symlink(REPO / "dashboards", work / "dashboards")
        os.symlink(REPO / "terraform" / "charts", work / "terraform" / "charts")
        os.symlink(REPO / "terraform" / "modules", work / "terraform" / "modules")
        root = work / "terraform" / "addons"
        root.mkdir()
        shutil.copy(ADDONS / "variables.tf", root / "variables.tf")
        (root / "main.tf").write_text(_root())
        (root / "terraform.tfvars.json").write_text(
            json.dumps({"region": REGION, "platform_state": {"bucket": "b", "key": "k", "region": REGION}})
        )
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        env.pop("TF_DATA_DIR", None)
        for args in (["init", "-backend=false"], ["apply", "-auto-approve", "-no-color"]):
            run = subprocess.run([terraform, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)
            if run.returncode != 0:
                raise AssertionError(f"terraform {' '.join(args)} of the addons' values failed:\n{run.stderr[-4000:]}")
        out = subprocess.run(
            [terraform, "output", "-json", "values"], cwd=root, env=env, capture_output=True, text=True, timeout=60
        )
        documents: dict[str, list[str]] = json.loads(out.stdout)
    merged: dict[str, dict[str, Any]] = {}
    for name, texts in documents.items():
        merged[name] = {}
        for text in texts:
            merged[name].update(yaml.safe_load(text) or {})
    return merged
