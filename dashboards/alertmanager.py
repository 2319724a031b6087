"""Alertmanager configuration: one template (alertmanager.yml), two renderings.

The template's only holes are ``${name}`` parameters, the syntax Terraform's ``templatefile``
fills (terraform/addons renders the AWS configuration with it) and that ``render_config`` fills
here the same way (the local runtime). Alertmanager's own ``{{ }}`` templates pass through both.

Parameters (see PARAMETERS): the SNS topic, its region and endpoint (empty on AWS: the regional
endpoint; the moto server locally), where the message templates lie, and the grouping waits.
Credentials are not parameters: Alertmanager signs with whatever its AWS SDK finds (the IRSA role
on EKS, moto's test credentials in the local process environment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "alertmanager.yml"
SNS_TEMPLATE_PATH = Path(__file__).resolve().parent / "alertmanager-sns.tmpl"
CONTROL_PLANE_RECEIVER = "control-plane-sns"

PARAMETERS = {
    "alerts_topic_arn": "the SNS topic on_alert_notification is subscribed to",
    "region": "the topic's region (SigV4 signing region)",
    "sns_api_url": "the SNS endpoint; empty means the region's AWS endpoint",
    "template_files": "glob of the message template files (alertmanager-sns.tmpl)",
    "group_wait": "first wait of a group, default routes",
    "group_interval": "wait between updates of a group, default routes",
    "urgent_group_wait": "first wait of a group, deployment and critical routes",
    "urgent_group_interval": "wait between updates of a group, deployment and critical routes",
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Characters that would change the YAML structure around a filled-in value.
_UNSAFE_VALUE = re.compile(r"['\n\r]")


def template_text() -> str:
    return CONFIG_PATH.read_text()


def placeholders(text: str | None = None) -> set[str]:
    """The parameter names the template uses."""
    return set(_PLACEHOLDER.findall(template_text() if text is None else text))


def render_config(parameters: Mapping[str, str]) -> str:
    """Fill every ``${name}`` of the template, as Terraform's templatefile does; every parameter
    must be given, and nothing else."""
    text = template_text()
    if "%{" in text:
        raise ValueError(f"{CONFIG_PATH.name}: Terraform directives (%{{) are not allowed")
    missing = sorted(placeholders(text) - set(parameters))
    unknown = sorted(set(parameters) - placeholders(text))
    if missing or unknown:
        raise ValueError(f"Alertmanager parameters: missing {missing}, unknown {unknown}")
    for name, value in parameters.items():
        if not isinstance(value, str) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"Alertmanager parameter {name} must be one line without single quotes: {value!r}")
    return _PLACEHOLDER.sub(lambda match: parameters[match.group(1)], text)


def load_config(parameters: Mapping[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(render_config(parameters))
    return config


def local_parameters(
    *,
    alerts_topic_arn: str,
    region: str,
    sns_api_url: str,
    template_dir: str | Path | None = None,
    wait: str = "1s",
    urgent_wait: str = "0s",
) -> dict[str, str]:
    """The local runtime's values: the embedded SNS (moto), every wait shortened to ``wait``, and the
    first wait of the deployment and critical routes to ``urgent_wait``: 0s sends a rollback alert
    on the evaluation that fired it (an alert that fires alone has nothing to wait for on one machine)."""
    return {
        "alerts_topic_arn": alerts_topic_arn,
        "region": region,
        "sns_api_url": sns_api_url,
        "template_files": str(Path(template_dir or SNS_TEMPLATE_PATH.parent) / "*.tmpl"),
        "group_wait": wait,
        "group_interval": wait,
        "urgent_group_wait": urgent_wait,
        "urgent_group_interval": wait,
    }
