"""State machine definitions: valid ASL, and every name they use is one the code defines."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from control.errors import TASK_ERROR_NAMES
from control.local.provision import render_definition
from control.local.resources import ALL_FUNCTIONS, EVENT_FUNCTIONS, STATE_MACHINES, TASK_FUNCTIONS

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((REPO / "statemachines").glob("*.asl.json"))
VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
# Errors Lambda and Step Functions themselves raise, which a Retry may name.
PLATFORM_ERRORS = re.compile(r"^(States\.[A-Za-z]+|Lambda\.[A-Za-z]+)$")


def states_of(definition: dict):
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from states_of(branch)
        if "ItemProcessor" in state:
            yield from states_of(state["ItemProcessor"])


def test_every_state_machine_file_is_known():
    assert {path.name for path in DEFINITIONS} <= set(STATE_MACHINES.values())
    assert "training_pipeline.asl.json" in {path.name for path in DEFINITIONS}


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_definitions_pass_the_asl_validator(path):
    if not VALIDATOR.exists():
        pytest.fail("asl-validator is not installed: run `npm ci` (scripts/setup.sh does)")
    result = subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_definitions_only_name_errors_the_code_raises(path):
    definition = json.loads(path.read_text())
    for name, state in states_of(definition):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                assert error in TASK_ERROR_NAMES or PLATFORM_ERRORS.match(error), f"{name} names {error}"
        if state["Type"] == "Task":
            retried = {e for rule in state.get("Retry", []) for e in rule["ErrorEquals"]}
            assert "RetryableTaskError" in retried, f"{name} does not retry RetryableTaskError"
            assert "FatalTaskError" not in retried, f"{name} retries FatalTaskError"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_placeholder_is_a_function_or_state_machine_we_deploy(path):
    placeholders = set(re.findall(r"\$\{([a-z_]+)\}", path.read_text()))
    known = {f"{name}_arn" for name in ALL_FUNCTIONS} | {"rollout_state_machine_arn"}
    assert placeholders <= known, placeholders - known
    rendered = render_definition(path.name, {name: f"arn:aws:lambda:us-east-1:1:function:{name}" for name in known})
    json.loads(rendered)


def test_every_task_function_is_a_handler_of_the_chalice_app():
    import app

    handlers = set(app.app.handler_map)
    assert set(TASK_FUNCTIONS) <= handlers
    route_views = {route.view_name for methods in app.app.routes.values() for route in methods.values()}
    assert not route_views & (set(TASK_FUNCTIONS) | set(EVENT_FUNCTIONS)), "a route shadows a Lambda function"
    for path in DEFINITIONS:
        for name in re.findall(r"\$\{([a-z_]+)_arn\}", path.read_text()):
            if name in TASK_FUNCTIONS:
                assert name in handlers, f"{path.name} calls {name}, which the app does not define"


def test_node_is_available_for_the_validator():
    assert shutil.which("node"), "Node.js is needed for asl-validator"


def test_every_terraform_handler_string_resolves_in_the_app_module():
    """Lambda imports `app` and looks up the attribute the handler string names."""
    import app

    text = (REPO / "terraform" / "modules" / "functions" / "main.tf").read_text()
    handlers = dict(re.findall(r"^\s*(\w+)\s*=\s*\{\s*handler\s*=\s*\"([\w.]+)\"", text, re.MULTILINE))
    assert set(handlers) == set(ALL_FUNCTIONS)
    for name, handler in handlers.items():
        module, _, attribute = handler.partition(".")
        assert module == "app", handler
        assert callable(getattr(app, attribute, None)), f"{name}: app.{attribute} is not a handler"


def test_the_rollout_loop_tells_each_step_its_own_name():
    """reconcile_step retires a loop the deployment no longer names: it must know which loop it is."""
    definition = json.loads((REPO / "statemachines" / "rollout.asl.json").read_text())
    assert definition["States"]["Reconcile"]["Parameters"]["state"] == {
        "deployment.$": "$.deployment",
        "loop.$": "$$.Execution.Name",
    }
