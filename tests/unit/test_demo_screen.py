"""The demo's screen shows progress only: phases as they are entered, in words a user reads (never
`vNone`), and nothing of what the API and the functions log, which goes to the log file instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from control.demo.serving import wait_for_phase
from control.demo.training import console, versions_line

REPO = Path(__file__).resolve().parents[2]


def test_what_serves_is_said_in_words_even_before_anything_serves() -> None:
    assert versions_line(None, None) == "nothing serving yet"
    assert versions_line(None, 1) == "nothing serving yet, preview v1"
    assert versions_line(1, None) == "serving v1"
    assert versions_line(1, 2) == "serving v1, preview v2"


class ScriptedApi:
    """The statuses `GET /deployments/{name}` answers, one per call (the last one repeats), with a
    canary's progress where given."""

    def __init__(self, statuses: list[dict[str, Any]], canaries: list[dict[str, Any] | None] | None = None) -> None:
        self.statuses = statuses
        self.canaries = canaries or [None] * len(statuses)
        self.calls = 0

    def get_deployment(self, name: str) -> dict[str, Any]:
        assert name == "demo"
        self.calls += 1
        index = min(self.calls, len(self.statuses)) - 1
        return {"status": self.statuses[index], "canary": self.canaries[index]}


class NoTraffic:
    def refresh(self) -> None:
        return None

    def counts(self) -> tuple[int, int]:
        return 0, 0


def status(phase: str, active: int | None, preview: int | None, reason: str = "") -> dict[str, Any]:
    return {"phase": phase, "target_version": 1, "active_version": active, "preview_version": preview, "reason": reason}


def test_a_first_rollout_prints_each_phase_once_and_never_vnone() -> None:
    api = ScriptedApi(
        [
            status("PENDING", None, None),
            status("DEPLOYING_PREVIEW", None, 1),
            status("DEPLOYING_PREVIEW", None, 1),
            status("COMPLETED", 1, 1, "v1 serves"),
        ]
    )
    with console.capture() as captured:
        final = wait_for_phase(api, NoTraffic(), "demo", {"COMPLETED"}, timeout=60, poll_seconds=0)
    assert final["phase"] == "COMPLETED"
    lines = captured.get().splitlines()
    assert [line.split()[1] for line in lines] == ["PENDING", "DEPLOYING_PREVIEW", "COMPLETED"]
    assert "nothing serving yet" in lines[0] and "serving v1, preview v1 · v1 serves" in lines[2]
    assert "None" not in captured.get()


SCRIPT = """
import logging, subprocess, sys
from pathlib import Path
held = logging.getLogger("held-before")
held.addHandler(logging.StreamHandler(sys.stderr))  # a handler that holds stderr from before
from control.demo.training import console, progress_only
with progress_only(Path(sys.argv[1])):
    console.print("1. a step")
    print('{"level":"INFO","message":"dataset event"}')
    held.warning('127.0.0.1 - - [07/Dec/2026 10:40:45] "GET /deployments/demo HTTP/1.1" 200 -')
    subprocess.run(["echo", "a child process"], check=True)
console.print("report: here")
"""


def test_logs_go_to_the_log_file_and_the_screen_keeps_the_progress(tmp_path: Path) -> None:
    log = tmp_path / "report" / "demo.log"
    shown = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(log)], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout == "1. a step\nreport: here\n" and shown.stderr == ""
    logged = log.read_text()
    for line in ('"message":"dataset event"', '"GET /deployments/demo HTTP/1.1" 200', "a child process"):
        assert line in logged


ROLLOUT_SCRIPT = """
import sys
from pathlib import Path
from control.demo.training import progress_only
from control.demo.serving import wait_for_phase

class Api:  # answers like the API, which logs each request as http.server does: to sys.stderr, then
    calls = 0
    def get_deployment(self, name):
        self.calls += 1
        sys.stderr.write('127.0.0.1 - - "GET /deployments/demo HTTP/1.1" 200 -\\n')
        phase = ["PENDING", "DEPLOYING_PREVIEW", "COMPLETED"][min(self.calls, 3) - 1]
        return {"status": {"phase": phase, "target_version": 1, "active_version": None, "preview_version": None}}

class Traffic:
    def refresh(self): pass
    def counts(self): return 0, 0

with progress_only(Path(sys.argv[1])):
    wait_for_phase(Api(), Traffic(), "demo", {"COMPLETED"}, timeout=60, poll_seconds=0)
"""


def test_on_a_terminal_the_live_line_takes_none_of_the_logs_back_to_the_screen(tmp_path: Path) -> None:
    """A terminal: the rollout's live line is drawn, and rich's Live must not grab stdout/stderr."""
    log = tmp_path / "demo.log"
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", ROLLOUT_SCRIPT, str(log)], cwd=REPO, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "PENDING" in text and "COMPLETED" in text
    assert "GET /deployments/demo" not in text
    assert log.read_text().count("GET /deployments/demo") == 3


def test_a_canary_prints_each_weight_it_reaches() -> None:
    canary = [
        status("CANARY", 1, 2),
        status("CANARY", 1, 2),
        status("ROLLING_BACK", 1, 2, "rolling back to v1"),
        status("ROLLED_BACK", 1, 2, "rolled back to v1"),
    ]
    progress = [
        {"weight": 0, "step": 1, "steps": 7},
        {"weight": 10, "step": 2, "steps": 7},
        {"weight": 0, "step": 2, "steps": 7},
        {"weight": 0, "step": 2, "steps": 7},
    ]
    with console.capture() as captured:
        wait_for_phase(ScriptedApi(canary, progress), NoTraffic(), "demo", {"ROLLED_BACK"}, 60, poll_seconds=0)
    lines = captured.get().splitlines()
    assert [line.split()[1] for line in lines] == ["CANARY", "CANARY", "ROLLING_BACK", "ROLLED_BACK"]
    assert "0% of the requests to v1" in lines[0] and "10% of the requests to v1" in lines[1]


def test_the_report_reads_the_weight_each_recorded_change_set() -> None:
    from control.demo.report import _canary_weight

    assert _canary_weight("traffic to v3 0% → 10% (canary step 1: setWeight)") == 10
    assert _canary_weight("traffic to v3 set to 0% at once: rollout canary-analysis: ...") == 0
    assert _canary_weight("something else") is None
