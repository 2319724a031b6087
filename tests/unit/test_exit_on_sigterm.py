"""A script that starts the platform stops it when it is asked to stop (SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, time
from pathlib import Path
from control.local.processes import exit_on_sigterm
exit_on_sigterm()
try:
    print("started", flush=True)
    time.sleep(60)
finally:
    Path(sys.argv[1]).write_text("cleaned up")
"""


def test_sigterm_runs_the_scripts_cleanup_and_exits_143(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert script.stdout is not None and script.stdout.readline().strip() == "started"
    started = time.monotonic()
    script.send_signal(signal.SIGTERM)
    assert script.wait(timeout=20) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 10
    assert marker.read_text() == "cleaned up"
