"""Scheduled functions: the Chalice app's schedules, the Terraform rules and the functions the local
scheduler invokes are the same, at the same rate, and an EventBridge "Scheduled Event" reaches the
handler as Lambda would deliver it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import hcl2
from chalice.app import ScheduledEventConfig

from control.local.resources import SCHEDULED_FUNCTIONS
from control.local.scheduler import scheduled_event
from tests.fakes import in_memory_platform

REPO = Path(__file__).resolve().parents[2]
SCHEDULES_TF = REPO / "terraform" / "modules" / "functions" / "schedules.tf"
EVENTS = REPO / "tests" / "events"


def unq(value: object) -> object:
    """python-hcl2 8 keeps string quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def app_schedules() -> dict[str, str]:
    import app

    return {
        source.name: str(source.schedule_expression)
        for source in app.app.event_sources
        if isinstance(source, ScheduledEventConfig)
    }


def terraform_schedules() -> dict[str, str]:
    doc = hcl2.load(SCHEDULES_TF.open())
    (schedules,) = [block["schedules"] for block in doc["locals"] if "schedules" in block]
    return {unq(name): str(unq(rate)) for name, rate in schedules.items()}


def test_the_app_terraform_and_the_local_scheduler_schedule_the_same_functions_at_the_same_rate() -> None:
    assert set(app_schedules()) == set(SCHEDULED_FUNCTIONS) == {"sweep_rollouts"}
    assert terraform_schedules() == app_schedules()


def test_the_local_scheduler_sends_eventbridge_s_scheduled_event_shape() -> None:
    real = json.loads((EVENTS / "eventbridge_scheduled_event.json").read_text())
    local = scheduled_event(real["resources"][0], real["region"], real["account"], datetime.now(UTC))
    assert set(local) == set(real) and local["detail-type"] == real["detail-type"] and local["source"] == "aws.events"


def test_the_sweep_handler_takes_the_scheduled_event_as_lambda_delivers_it() -> None:
    import app

    event = json.loads((EVENTS / "eventbridge_scheduled_event.json").read_text())
    app.use_platform(in_memory_platform())
    try:
        report = app.app.handler_map["sweep_rollouts"](event, None)
    finally:
        app.use_platform(None)
    assert report == {"deployments": 0, "started": [], "stuck": []}
