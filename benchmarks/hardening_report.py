"""Runs tests/hardening and prints what was thrown at the platform and what was lost.

    .venv/bin/python benchmarks/hardening_report.py [--json OUT]

The table comes from the tests themselves (tests/hardening/conftest.py keeps the ledger): faults
injected, bad inputs tried, requests sent, events delivered, and what was lost (must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("faults injected", "bad inputs tried", "requests sent", "events delivered", "lost")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/hardening", "-q", "-p", "no:cacheprovider", "--show-capture=no"],
            cwd=REPO,
            env={**os.environ, "MLCP_HARDENING_REPORT": str(out)},
            capture_output=True,
            text=True,
        )
        summary = [line for line in run.stdout.splitlines() if " passed" in line or " failed" in line]
        if not out.exists():
            print(run.stdout[-4000:], run.stderr[-2000:], sep="\n")
            return run.returncode or 1
        rows = json.loads(out.read_text())
    width = max(len(area) for area in rows) + 2
    print("| area".ljust(width + 2) + "".join(f"| {c} " for c in COLUMNS) + "|")
    print("|" + "-" * (width + 1) + "".join("|" + "-" * (len(c) + 2) for c in COLUMNS) + "|")
    total = dict.fromkeys(COLUMNS, 0)
    for area, counts in rows.items():
        cells = [counts.get(c, 0) for c in COLUMNS]
        for c, v in zip(COLUMNS, cells, strict=True):
            total[c] += v
        row = "".join(f"| {v:>{len(c)}} " for c, v in zip(COLUMNS, cells, strict=True))
        print(f"| {area}".ljust(width + 2) + row + "|")
    print("| total".ljust(width + 2) + "".join(f"| {total[c]:>{len(c)}} " for c in COLUMNS) + "|")
    print("\n" + (summary[-1] if summary else f"pytest exited {run.returncode}"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
