"""What terraform/addons passes to the Alertmanager template, read from its HCL."""

from __future__ import annotations

from typing import Any

import hcl2

from tests.support.tools import REPO

ADDONS = REPO / "terraform" / "addons" / "main.tf"


def _unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def addons_locals() -> dict[str, Any]:
    """Every `locals` entry of terraform/addons/main.tf, parsed by python-hcl2 (strings keep quotes)."""
    parsed = hcl2.loads(ADDONS.read_text())
    merged: dict[str, Any] = {}
    for block in parsed["locals"]:
        merged |= {key: value for key, value in block.items() if not key.startswith("__")}
    return merged


def addons_parameters() -> dict[str, str]:
    """What the addons pass to templatefile: literal strings as written, expressions (the topic ARN,
    the region, known only at apply) as a marker naming the expression."""
    raw = {k: v for k, v in addons_locals()["alertmanager_parameters"].items() if not k.startswith("__")}
    return {
        name: _unquote(value) if value.startswith('"') else f"<{value.strip('${}')}>" for name, value in raw.items()
    }
