"""Creates the platform's AWS resources in the embedded AWS, from the definitions AWS uses."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from control.adapters.aws import client
from control.local.resources import (
    ALL_FUNCTIONS,
    STATE_MACHINES,
    function_name,
    registry_table_definition,
)

REPO = Path(__file__).resolve().parents[2]
STATEMACHINES_DIR = REPO / "statemachines"
ACCOUNT = "123456789012"


@dataclass
class Resources:
    """What a user or a script needs to reach the embedded platform (the endpoints file)."""

    aws_endpoint_url: str
    region: str
    stage: str
    data_bucket: str
    artifacts_bucket: str
    registry_table: str
    dead_letter_queue_url: str
    alerts_topic_arn: str
    state_machines: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_definition(filename: str, substitutions: dict[str, str]) -> str:
    """Fill `${name}` placeholders, as Terraform's templatefile does; all must be known."""
    text = (STATEMACHINES_DIR / filename).read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        start = text.index("${")
        raise ValueError(f"{filename}: unfilled placeholder {text[start : text.index('}', start) + 1]}")
    return text


def alerts_topic_arn(region: str, stage: str) -> str:
    """The alerts topic `provision` creates (known before it exists: Alertmanager starts first)."""
    return f"arn:aws:sns:{region}:{ACCOUNT}:mlcp-{stage}-alerts"


def _code_zip() -> bytes:
    # moto stores the code; the bridge runs the real handlers in-process instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# handlers run in-process through control.local.lambda_bridge\n")
    return buffer.getvalue()


def provision(
    endpoint_url: str, region: str, stage: str, environment: dict[str, str]
) -> tuple[Resources, dict[str, str]]:
    """Create buckets, table, queue, topic, functions, state machines and the S3 notification.

    `environment` is given to every function, as Terraform does; the state machine ARNs and
    the resource names are added to it here.
    """
    s3, dynamodb, sqs, sns, iam, lam, sfn = (
        client(name, region, endpoint_url)
        for name in ("s3", "dynamodb", "sqs", "sns", "iam", "lambda", "stepfunctions")
    )
    prefix = f"mlcp-{stage}"
    resources = Resources(
        aws_endpoint_url=endpoint_url,
        region=region,
        stage=stage,
        data_bucket=f"{prefix}-data",
        artifacts_bucket=f"{prefix}-artifacts",
        registry_table=f"{prefix}-registry",
        dead_letter_queue_url="",
        alerts_topic_arn="",
    )
    for bucket in (resources.data_bucket, resources.artifacts_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dynamodb.create_table(**registry_table_definition(resources.registry_table))
    resources.dead_letter_queue_url = sqs.create_queue(QueueName=f"{prefix}-dead-letters")["QueueUrl"]
    resources.alerts_topic_arn = sns.create_topic(Name=f"{prefix}-alerts")["TopicArn"]
    if resources.alerts_topic_arn != alerts_topic_arn(region, stage):
        raise RuntimeError(f"the embedded AWS named the alerts topic {resources.alerts_topic_arn}")

    role_arn = _service_role(iam, f"{prefix}-functions", "lambda.amazonaws.com")
    sfn_role_arn = _service_role(iam, f"{prefix}-states", "states.amazonaws.com")

    names = {"rollout": f"{prefix}-rollout", "training_pipeline": f"{prefix}-training-pipeline"}
    state_machine_arns = {key: f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{name}" for key, name in names.items()}
    env = {
        **environment,
        "CONTROL_REGION": region,
        "CONTROL_DATA_BUCKET": resources.data_bucket,
        "CONTROL_ARTIFACTS_BUCKET": resources.artifacts_bucket,
        "CONTROL_REGISTRY_TABLE": resources.registry_table,
        "CONTROL_DEAD_LETTER_QUEUE_URL": resources.dead_letter_queue_url,
        "CONTROL_TRAINING_STATE_MACHINE_ARN": state_machine_arns["training_pipeline"],
        "CONTROL_ROLLOUT_STATE_MACHINE_ARN": state_machine_arns["rollout"],
    }
    code = _code_zip()
    for name in ALL_FUNCTIONS:
        arn = lam.create_function(
            FunctionName=function_name(stage, name),
            Runtime="python3.11",
            Role=role_arn,
            Handler=f"app.{name}" if name != "api_handler" else "app.app",
            Code={"ZipFile": code},
            Timeout=60,
            Environment={"Variables": env},
        )["FunctionArn"]
        resources.functions[name] = arn
    placeholders = {f"{name}_arn": arn for name, arn in resources.functions.items()}
    placeholders["rollout_state_machine_arn"] = state_machine_arns["rollout"]
    for key in ("rollout", "training_pipeline"):
        if not (STATEMACHINES_DIR / STATE_MACHINES[key]).exists():
            continue
        arn = sfn.create_state_machine(
            name=names[key],
            definition=render_definition(STATE_MACHINES[key], placeholders),
            roleArn=sfn_role_arn,
        )["stateMachineArn"]
        resources.state_machines[key] = arn

    s3.put_bucket_notification_configuration(
        Bucket=resources.data_bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": resources.functions["on_dataset_uploaded"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "datasets/"}]}},
                }
            ]
        },
    )
    sns.subscribe(
        TopicArn=resources.alerts_topic_arn, Protocol="lambda", Endpoint=resources.functions["on_alert_notification"]
    )
    return resources, env


def _service_role(iam: Any, name: str, service: str) -> str:
    """A role `service` may assume (moto checks that one exists, not what it grants)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
