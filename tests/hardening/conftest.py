"""Shared by the hardening tests: a ledger of what was thrown at the platform, printed as a table.

Every test adds what it did (faults injected, bad inputs tried, requests sent, events delivered)
and what was lost; the table is printed at the end of the run and written to
`<pytest basetemp>/hardening_report.json` (benchmarks/hardening_report.py runs and prints it).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

COLUMNS = ("faults injected", "bad inputs tried", "requests sent", "events delivered", "lost")


class Ledger:
    def __init__(self) -> None:
        self.rows: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, area: str, **counts: int) -> None:
        for name, value in counts.items():
            column = name.replace("_", " ")
            assert column in COLUMNS, f"unknown ledger column {name}"
            self.rows[area][column] += value

    def table(self) -> str:
        width = max([len("area"), *map(len, self.rows)]) + 2
        lines = ["area".ljust(width) + "".join(c.rjust(18) for c in COLUMNS)]
        total: Counter[str] = Counter()
        for area in sorted(self.rows):
            total.update(self.rows[area])
            lines.append(area.ljust(width) + "".join(str(self.rows[area][c]).rjust(18) for c in COLUMNS))
        lines.append("total".ljust(width) + "".join(str(total[c]).rjust(18) for c in COLUMNS))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {area: dict(counts) for area, counts in sorted(self.rows.items())}


LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not LEDGER.rows:
        return
    terminalreporter.write_sep("=", "hardening report")
    terminalreporter.write_line(LEDGER.table())
    out = os.environ.get("MLCP_HARDENING_REPORT")
    if out:
        Path(out).write_text(json.dumps(LEDGER.to_dict(), indent=2) + "\n")


# -- what the embedded AWS holds ------------------------------------------------------------------


def dead_letter_count(aws: Callable[[str], Any], endpoints: dict[str, Any]) -> int:
    attributes = aws("sqs").get_queue_attributes(
        QueueUrl=endpoints["dead_letter_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def execution_names(aws: Callable[[str], Any], endpoints: dict[str, Any], machine: str) -> set[str]:
    sfn = aws("stepfunctions")
    names: set[str] = set()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=endpoints["state_machines"][machine]):
        names.update(e["name"] for e in page["executions"])
    return names


@pytest.fixture
def dead_letters(aws: Callable[[str], Any], endpoints: dict[str, Any]) -> Callable[[], int]:
    return lambda: dead_letter_count(aws, endpoints)


@pytest.fixture
def executions(aws: Callable[[str], Any], endpoints: dict[str, Any]) -> Callable[[str], set[str]]:
    return lambda machine: execution_names(aws, endpoints, machine)
