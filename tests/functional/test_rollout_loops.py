"""One reconcile loop per deployment: a rollback or a new rollout starts a newer loop and records it
as the deployment's owner; an older loop that is still running stops at its next step (after
making sure the owner runs), so two loops never step one deployment at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from control.domain.deployments import DeploymentRecord, StepRequest
from control.domain.rollout import Phase, RolloutSpec, start_rollout
from control.usecases import rollouts
from tests.support import wait_for


def test_a_superseded_loop_retires_and_the_owner_loop_runs_through_the_state_machine(embedded, endpoints, aws) -> None:
    from chalicelib.runtime import current_platform

    control = current_platform()
    deployment = "loops"
    spec = RolloutSpec(deployment, "loops", 2, 1, replicas=1)
    at_rest = replace(start_rollout(spec, datetime.now(UTC)), phase=Phase.FAILED, revision=3)
    owner = rollouts.loop_name(deployment, at_rest.revision)
    control.deployments.put(DeploymentRecord(spec, at_rest, loop=owner), expected_revision=None)

    old = rollouts.reconcile_step(control, StepRequest(deployment, rollouts.loop_name(deployment, 1)))
    assert old.done is True and old.reason == f"superseded by loop {owner}"
    assert control.deployments.get(deployment).status == at_rest  # the retiring loop wrote nothing

    # The retiring loop started the owner (its starter may have crashed); the owner's own steps,
    # named by the state machine ($$.Execution.Name), are not superseded.
    sfn = aws("stepfunctions")
    arn = endpoints["state_machines"]["rollout"].replace(":stateMachine:", ":execution:") + f":{owner}"

    def finished() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=arn)
        return described if described["status"] != "RUNNING" else None

    described = wait_for(finished, 60, 0.2, "the owner loop to finish")
    assert described["status"] == "SUCCEEDED", described
    assert "superseded" not in described["output"]
    assert rollouts.reconcile_step(control, StepRequest(deployment, owner)).reason != f"superseded by loop {owner}"
