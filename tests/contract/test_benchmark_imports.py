"""Every benchmark imports: a name one takes from the project that moved or went away fails here,
in `make unit`, not the next time someone runs that benchmark (three once broke silently when the
demo's `Api` class went). The benchmarks are imported, never run (each runs only as __main__)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(path.stem for path in (REPO / "benchmarks").glob("*.py"))

# In a child process: benchmarks set environment variables and sys.path as they import, and pull in
# the embedded runtime; none of that should leak into the other tests.
IMPORT_EACH = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module("benchmarks." + name)
    except BaseException as error:  # SystemExit too: a benchmark must not run on import
        failed[name] = f"{type(error).__name__}: {error}"
print(json.dumps(failed))
"""


def test_every_benchmark_imports_without_running() -> None:
    assert len(BENCHMARKS) >= 10, BENCHMARKS  # the glob found the folder
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *BENCHMARKS], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert failed == {}, "benchmarks that no longer import:\n" + "\n".join(f"  {n}: {e}" for n, e in failed.items())
