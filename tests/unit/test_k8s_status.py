"""MPIJob conditions (as mpi-operator v0.8.0 writes them) → JobStatus."""

from __future__ import annotations

import pytest

from control.domain.training import JobState
from control.manifests.status import mpijob_status


def with_conditions(*conditions: tuple[str, str, str, str]) -> dict:
    return {
        "status": {"conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions]}
    }


CREATED = ("Created", "True", "MPIJobCreated", "MPIJob ml-training/run is created.")
RUNNING = ("Running", "True", "MPIJobRunning", "MPIJob ml-training/run is running.")
RUNNING_DONE = ("Running", "False", "MPIJobRunning", "")


@pytest.mark.parametrize(
    ("obj", "state", "reason"),
    [
        ({}, JobState.PENDING, "Submitted"),
        (with_conditions(CREATED), JobState.PENDING, "MPIJobCreated"),
        (with_conditions(CREATED, RUNNING), JobState.RUNNING, "MPIJobRunning"),
        (
            with_conditions(CREATED, RUNNING, ("Restarting", "True", "MPIJobRestarting", "worker restarted")),
            JobState.RUNNING,
            "MPIJobRunning",
        ),
        (with_conditions(CREATED, ("Restarting", "True", "Restarting", "")), JobState.RUNNING, "Restarting"),
        (
            with_conditions(CREATED, RUNNING_DONE, ("Succeeded", "True", "MPIJobSucceeded", "done")),
            JobState.SUCCEEDED,
            "MPIJobSucceeded",
        ),
        (
            with_conditions(
                CREATED,
                RUNNING_DONE,
                ("Failed", "True", "BackoffLimitExceeded/Error", "Job has reached the specified backoff limit"),
            ),
            JobState.FAILED,
            "BackoffLimitExceeded/Error",
        ),
        (with_conditions(CREATED, ("Failed", "True", "DeadlineExceeded", "")), JobState.FAILED, "DeadlineExceeded"),
        (with_conditions(CREATED, ("Suspended", "True", "MPIJobSuspended", "")), JobState.PENDING, "MPIJobSuspended"),
        (with_conditions(("Failed", "False", "x", "")), JobState.PENDING, "Submitted"),
    ],
)
def test_conditions_map_to_states(obj: dict, state: JobState, reason: str) -> None:
    status = mpijob_status("run", obj)
    assert (status.name, status.state, status.reason) == ("run", state, reason)


def test_a_failure_keeps_the_operator_message() -> None:
    obj = with_conditions(CREATED, ("Failed", "True", "MPIJobFailed", "launcher exited: bad data in column x"))
    assert mpijob_status("run", obj).message == "launcher exited: bad data in column x"
