"""Security: authentication on every route, no secret in logs or errors, least-privilege IAM, checkov.

The IAM test reads the code, not a list kept by hand: every boto3 client method the Lambda code
calls (found with ast) becomes an IAM action, and the Lambda policy in terraform must grant
exactly those, plus the few actions the Lambda platform itself needs (listed with the reason).
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((REPO / "functions" / "chalicelib" / "openapi.json").read_text())
PUBLIC = {("GET", "/healthz"), ("GET", "/openapi.json")}
SAMPLE_PATH_VALUES = {"name": "m", "version": "1", "decision": "approve", "run_id": "r"}


def every_operation() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


# -- authentication --------------------------------------------------------------------------------


def test_only_health_and_the_document_are_public_in_the_openapi_document():
    public = {(m, p) for m, p, op in every_operation() if op.get("security", OPENAPI.get("security")) == []}
    assert public == PUBLIC


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in every_operation()])
def test_every_route_but_health_refuses_unauthenticated_calls(endpoints, embedded, method, path, ledger):
    url = endpoints["api_url"] + concrete(path)
    attempts = {
        "no token": {},
        "wrong token": {"Authorization": "Bearer not-the-token"},
        "not bearer": {"Authorization": f"Basic {endpoints['api_token']}"},
        "token alone": {"Authorization": endpoints["api_token"]},
        "other route's token": {
            "Authorization": f"Bearer {embedded.api_token if path == '/alerts/alertmanager' else embedded.alert_token}"
        },
    }
    for what, headers in attempts.items():
        response = requests.request(method, url, headers=headers, json={"reason": "x"}, timeout=30)
        if (method, path) in PUBLIC:
            assert response.status_code == 200, (what, response.text)
            continue
        assert response.status_code == 401, (method, path, what, response.status_code, response.text[:200])
        assert response.json()["error"] == "Unauthorized"
    ledger.add("authentication", bad_inputs_tried=len(attempts), requests_sent=len(attempts))


def test_the_alert_route_takes_only_the_alert_token(endpoints, embedded):
    url = endpoints["api_url"] + "/alerts/alertmanager"
    body = {"version": "4", "groupKey": "{}", "status": "firing", "receiver": "r", "alerts": []}
    with_api_token = requests.post(
        url, json=body, headers={"Authorization": f"Bearer {embedded.api_token}"}, timeout=30
    )
    assert with_api_token.status_code == 401
    right = requests.post(url, json=body, headers={"Authorization": f"Bearer {embedded.alert_token}"}, timeout=30)
    assert right.status_code == 200 and right.json()["received"] == 0


# -- secrets ---------------------------------------------------------------------------------------


def test_no_token_appears_in_logs_or_error_messages(endpoints, embedded, caplog, capfd, ledger):
    secrets = {"api token": embedded.api_token, "alert token": embedded.alert_token}
    url = endpoints["api_url"]
    bodies = []
    caplog.set_level(logging.DEBUG)
    calls = [
        ("GET", "/models", {"Authorization": f"Bearer {embedded.alert_token}"}, None),
        ("GET", "/models", {"Authorization": f"Bearer {embedded.api_token}x"}, None),
        ("POST", "/alerts/alertmanager", {"Authorization": f"Bearer {embedded.api_token}"}, b"{}"),
        ("POST", "/alerts/alertmanager", {"Authorization": f"Bearer {embedded.alert_token}"}, b"{not json"),
        ("POST", "/alerts/alertmanager", {"Authorization": f"Bearer {embedded.alert_token}"}, b'{"version": "3"}'),
        ("POST", "/training-runs", {"Authorization": f"Bearer {embedded.api_token}"}, b'{"dataset_uri": 1}'),
        ("POST", "/training-runs", {"Authorization": f"Bearer {embedded.api_token}"}, b"[" * 5000),
        ("GET", "/models/BAD/versions", {"Authorization": f"Bearer {embedded.api_token}"}, None),
        ("GET", "/deployments/nope", {"Authorization": f"Bearer {embedded.api_token}"}, None),
        ("POST", "/deployments/nope/rollback", {"Authorization": f"Bearer {embedded.api_token}"}, b'{"reason":"r"}'),
    ]
    for method, path, headers, data in calls:
        response = requests.request(method, url + path, headers=headers, data=data, timeout=30)
        bodies.append(response.text + json.dumps(dict(response.headers)))
    from chalicelib.events import on_alert_notification

    on_alert_notification({"Records": [{"Sns": {"Message": f"token={embedded.api_token[:4]}"}}]}, None)
    captured = capfd.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err, *bodies])
    for what, secret in secrets.items():
        assert secret not in text, f"the {what} leaked into logs or responses"
    ledger.add("secrets in logs", requests_sent=len(calls), bad_inputs_tried=len(calls) + 1)


# -- IAM: what the code calls == what the Lambda policy grants --------------------------------------

LAMBDA_CODE = [
    REPO / "control" / "adapters",
    REPO / "control" / "usecases",
    REPO / "control" / "kubernetes",
    REPO / "control" / "composition.py",
    REPO / "functions" / "app.py",
    REPO / "functions" / "chalicelib",
]
# Not called by our code, needed by the Lambda platform around it (the reason for each).
PLATFORM_ACTIONS = {
    "logs:CreateLogStream": "the Lambda runtime writes the function's logs with the function's role",
    "logs:PutLogEvents": "the Lambda runtime writes the function's logs with the function's role",
    "ec2:CreateNetworkInterface": "Lambda attaches VPC functions with the function's role",
    "ec2:DescribeNetworkInterfaces": "Lambda attaches VPC functions with the function's role",
    "ec2:DeleteNetworkInterface": "Lambda attaches VPC functions with the function's role",
    "ec2:AssignPrivateIpAddresses": "Lambda attaches VPC functions with the function's role",
    "ec2:UnassignPrivateIpAddresses": "Lambda attaches VPC functions with the function's role",
    "xray:PutTraceSegments": "active tracing: the runtime sends segments with the function's role",
    "xray:PutTelemetryRecords": "active tracing: the runtime sends segments with the function's role",
    "s3:ListBucket": "HeadObject/GetObject answer 403 instead of 404 for a missing key without it; "
    "the code relies on NotFound (a dataset deleted before it was read)",
    "elasticfilesystem:ClientMount": "Lambda mounts stage_dataset's EFS access point with the function's role",
    "elasticfilesystem:ClientWrite": "stage_dataset writes the staged copies through its EFS mount",
    "kms:Decrypt": "S3, DynamoDB, SQS and Secrets Manager are encrypted with the platform's KMS key",
    "kms:GenerateDataKey": "writes to the KMS-encrypted queue and bucket need a data key",
}
# boto3 operation → IAM action, where they differ.
IAM_NAME = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "sts:GetCallerIdentity": None,  # needs no permission (the EKS token is a presigned GetCallerIdentity)
}
TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _python_files() -> list[Path]:
    files: list[Path] = []
    for place in LAMBDA_CODE:
        files += [place] if place.is_file() else sorted(place.rglob("*.py"))
    return files


def _service_of_clients() -> dict[str, str]:
    """Adapter class → AWS service, from the composition root: `Adapter(client("svc"), ...)`."""
    tree = ast.parse((REPO / "control" / "composition.py").read_text())
    services = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.args:
            first = call.args[0]
            if (
                isinstance(first, ast.Call)
                and isinstance(first.func, ast.Name)
                and first.func.id == "client"
                and isinstance(first.args[0], ast.Constant)
            ):
                services[call.func.id] = first.args[0].value
    return services


def code_actions() -> dict[str, set[str]]:
    """IAM action → where in the code it is called."""
    services = _service_of_clients()
    used = _methods_called_through_the_platform()
    calls: dict[str, set[str]] = {}

    def add(service: str, method: str, where: str, node: ast.AST, call: ast.AST | None = None) -> None:
        operation = _operation(service, method)
        action = f"{_iam_prefix(service)}:{operation}"
        action = IAM_NAME.get(action, action)
        if action:
            calls.setdefault(action, set()).add(where)
        if action == "s3:GetObject" and call is not None and _names_a_version(call):
            calls.setdefault("s3:GetObjectVersion", set()).add(where + " (VersionId)")
        if operation == "TransactWriteItems":
            for kind in _transact_kinds(node):
                calls.setdefault(f"dynamodb:{TRANSACT_ITEM_ACTIONS[kind]}", set()).add(where + " (transaction)")

    for path in _python_files():
        tree = ast.parse(path.read_text())
        where = str(path.relative_to(REPO))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            service = services.get(cls.name)
            if service is None:
                continue
            attribute = _client_attribute(cls)
            reachable = _reachable_methods(cls, used.get(cls.name))
            for function in cls.body:
                if not isinstance(function, ast.FunctionDef) or function.name not in reachable:
                    continue
                for node in ast.walk(function):
                    method = _method_on(node, attribute)
                    if method:
                        add(service, method, f"{where}:{cls.name}.{function.name}", tree, node)
        # clients built in place: `x = <something>.client("svc", ...)` then `x.method(...)`
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            local = {}
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, (ast.Attribute, ast.Name))
                    and getattr(node.value.func, "attr", getattr(node.value.func, "id", "")) == "client"
                    and node.value.args
                    and isinstance(node.value.args[0], ast.Constant)
                    and isinstance(node.targets[0], ast.Name)
                ):
                    local[node.targets[0].id] = node.value.args[0].value
            for node in ast.walk(func):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    built = _built_client(owner)
                    if built:  # `session.client("eks").describe_cluster(...)`
                        add(built, node.func.attr, f"{where}:{func.name}", tree)
                    elif isinstance(owner, ast.Name) and owner.id in local:
                        method = node.func.attr
                        if method == "get_paginator" and isinstance(node.args[0], ast.Constant):
                            method = node.args[0].value
                        if method not in ("meta", "generate_presigned_url", "can_paginate"):
                            add(local[owner.id], method, f"{where}:{func.name}", tree)
    return calls


def _methods_called_through_the_platform() -> dict[str, set[str]]:
    """Adapter class → the methods the Lambda code calls on it (`platform.<property>.<method>(`).

    An adapter method only the CLI or a benchmark calls is not the Lambda's to be granted."""
    tree = ast.parse((REPO / "control" / "composition.py").read_text())
    class_of = {  # Platform(registry=DynamoDbRegistry(...), ...): port name → adapter class
        keyword.arg: keyword.value.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Platform"
        for keyword in node.keywords
        if isinstance(keyword.value, ast.Call) and isinstance(keyword.value.func, ast.Name) and keyword.arg
    }
    used: dict[str, set[str]] = {}
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Attribute) and owner.attr in class_of:
                    used.setdefault(class_of[owner.attr], set()).add(node.func.attr)
    return used


def _reachable_methods(cls: ast.ClassDef, entry: set[str] | None) -> set[str]:
    """`entry` and what they call on self; every method when the class is not behind a property."""
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    if entry is None:
        return set(methods)
    reachable, todo = set(), [m for m in entry if m in methods]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        reachable.add(name)
        for node in ast.walk(methods[name]):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in methods
            ):
                todo.append(node.attr)
    return reachable


def _built_client(node: ast.AST) -> str | None:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value)
    return None


def _client_attribute(cls: ast.ClassDef) -> str | None:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            first = node.args.args[1].arg
            for statement in ast.walk(node):
                if (
                    isinstance(statement, ast.Assign)
                    and isinstance(statement.value, ast.Name)
                    and statement.value.id == first
                    and isinstance(statement.targets[0], ast.Attribute)
                ):
                    return statement.targets[0].attr
    return None


def _method_on(node: ast.AST, attribute: str | None) -> str | None:
    if attribute is None or not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    owner = node.func.value
    if not (isinstance(owner, ast.Attribute) and owner.attr == attribute):
        return None
    if node.func.attr == "get_paginator":
        argument = node.args[0]
        return argument.value if isinstance(argument, ast.Constant) else None
    return node.func.attr


@functools.cache
def _operation(service: str, method: str) -> str:
    mapping = boto3.session.Session().client(service, region_name="us-east-1").meta.method_to_api_mapping
    assert method in mapping, f"{service}.{method} is not a boto3 client method"
    return mapping[method]


def _iam_prefix(service: str) -> str:
    return {"stepfunctions": "states"}.get(service, service)


def _names_a_version(call: ast.AST) -> bool:
    """A GetObject/HeadObject that passes VersionId (directly or through `**_version(...)`) needs
    s3:GetObjectVersion as well."""
    keywords = call.keywords if isinstance(call, ast.Call) else []
    return any(k.arg == "VersionId" or (k.arg is None and "_version(" in ast.unparse(k.value)) for k in keywords)


def _transact_kinds(tree: ast.AST) -> set[str]:
    kinds = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            kinds |= {k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in TRANSACT_ITEM_ACTIONS}
    return kinds


def policy_actions() -> set[str]:
    with (REPO / "terraform" / "modules" / "functions" / "iam.tf").open() as handle:
        parsed = hcl2.load(handle)
    policy = next(local["function_policy"] for local in parsed["locals"] if "function_policy" in local)
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"].strip('"') == "Allow"
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
    return {a.strip('"') for a in actions}


def test_the_lambda_policy_grants_exactly_what_the_code_calls(ledger):
    called = code_actions()
    needed = set(called) | set(PLATFORM_ACTIONS)
    granted = policy_actions()
    missing = {action: sorted(called.get(action, [])) for action in sorted(needed - granted)}
    unused = sorted(granted - needed)
    assert not missing and not unused, (
        f"\nmissing from the policy (called by the code): {json.dumps(missing, indent=1)}"
        f"\ngranted but never called: {unused}"
    )


def test_the_scan_finds_the_calls_we_know_of():
    called = code_actions()
    for action in ("dynamodb:GetItem", "dynamodb:Query", "s3:GetObject", "states:StartExecution", "sqs:SendMessage"):
        assert action in called, sorted(called)


# -- Kubernetes manifests ---------------------------------------------------------------------------

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
DIGEST = "@sha256:" + "0" * 64
# Each skip with its reason (checked by the test below: no skip without one).
CHECKOV_SKIPS = {
    "CKV_K8S_15": "images are pinned by digest (CKV_K8S_43 passes), so IfNotPresent cannot run another image; "
    "Always would add an ECR round trip to every pod start and fail pods when ECR is unreachable",
}


def test_checkov_finds_no_failed_check_in_the_manifests(tmp_path, ledger):
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV} (make test installs it)")
    from dataclasses import replace

    from control.manifests import examples

    config = replace(
        examples.EXAMPLE_CONFIG,
        training_image=examples.EXAMPLE_CONFIG.training_image.rsplit(":", 1)[0] + DIGEST,
        inference_image=examples.EXAMPLE_CONFIG.inference_image.rsplit(":", 1)[0] + DIGEST,
    )
    original = examples.EXAMPLE_CONFIG
    examples.EXAMPLE_CONFIG = config
    try:
        rendered = examples.examples()
    finally:
        examples.EXAMPLE_CONFIG = original
    for name in ("base", "monitoring"):
        for source in (REPO / "workloads" / "k8s" / name).glob("*.yaml"):
            if source.name != "kustomization.yaml":
                (tmp_path / f"{name}-{source.name}").write_text(source.read_text())
    for name, objects in rendered.items():
        (tmp_path / f"rendered-{name}").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    for reason in CHECKOV_SKIPS.values():
        assert len(reason) > 40, "every skip says why"
    run = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--skip-check",
            ",".join(CHECKOV_SKIPS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({Path(c['file_path']).name})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in reports) > 100
