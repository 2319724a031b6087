"""What the deployed platform gives the API server: the chart's RBAC and namespaces, and Terraform's
access entries. Rendered from the repository's own sources, never restated here."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.kube_apiserver.auth import AccessEntry, access_entries

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "terraform" / "charts" / "mlcp-platform"
EKS_MODULE = REPO / "terraform" / "modules" / "eks"
HELM_PYTHON = REPO / ".venv-helm" / "bin" / "python"
ACCOUNT = "123456789012"
CONTROL_PLANE_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlcp-ci-functions"
ADMIN_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlcp-ci-admin"

_RENDER = r"""
import json, sys
import helm_python as helm
with helm.Chart.load(sys.argv[1]) as c:
    print(json.dumps(c.render(json.loads(sys.argv[2]), name="mlcp-platform", namespace="kube-system")))
"""


@functools.cache
def chart_documents() -> list[dict[str, Any]]:
    """The mlcp-platform chart rendered with helm-python-sdk (`.venv-helm`), its defaults plus the
    values Terraform has to give it (a volume handle)."""
    if not HELM_PYTHON.exists():
        raise RuntimeError(f"helm-python-sdk is not installed at {HELM_PYTHON} (scripts/setup.sh installs it)")
    values = {"checkpoints": {"volumeHandle": "fs-0123::fsap-0123"}}
    proc = subprocess.run(
        [str(HELM_PYTHON), "-c", _RENDER, str(CHART), json.dumps(values)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rendering {CHART} failed:\n{proc.stderr[-3000:]}")
    rendered: dict[str, str] = json.loads(proc.stdout)
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


@functools.cache
def terraform_access_entries() -> tuple[AccessEntry, ...]:
    """The EKS module's access entries, for the roles the example environment passes it."""
    variables = {"control_plane_role_arn": CONTROL_PLANE_ROLE_ARN, "admin_role_arns": [ADMIN_ROLE_ARN]}
    return tuple(access_entries(EKS_MODULE, variables))
