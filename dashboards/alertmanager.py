"""Alertmanager configuration: the AWS file as committed, and its variant for the local runtime."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from dashboards.rules import dump_yaml

CONFIG_PATH = Path(__file__).resolve().parent / "alertmanager.yml"
SNS_TEMPLATE_PATH = Path(__file__).resolve().parent / "alertmanager-sns.tmpl"
WEBHOOK_RECEIVER = "control-plane-webhook"


def load_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG_PATH.read_text())
    return config


def local_config(webhook_url: str, token_file: str | Path, group_wait: str = "1s") -> dict[str, Any]:
    """The AWS routes, grouping and inhibitions, delivering only to the local API.

    webhook_url: the local API's ``/alerts/alertmanager`` route; token_file: a file holding the
    bearer token the API expects. SNS receivers are emptied (nothing on AWS to reach), every
    route waits ``group_wait`` before its first notification and regroups after 1 s.
    """
    config = copy.deepcopy(load_config())
    config["templates"] = [str(SNS_TEMPLATE_PATH)]
    receivers = []
    for receiver in config["receivers"]:
        if receiver["name"] == WEBHOOK_RECEIVER:
            for webhook in receiver["webhook_configs"]:
                webhook["url"] = webhook_url
                webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
            receivers.append(receiver)
        else:
            receivers.append({"name": receiver["name"]})
    config["receivers"] = receivers
    _shorten_waits(config["route"], group_wait)
    return config


def _shorten_waits(route: dict[str, Any], group_wait: str) -> None:
    route["group_wait"] = group_wait
    route["group_interval"] = "1s"
    for child in route.get("routes", []):
        _shorten_waits(child, group_wait)


def render_local_config(webhook_url: str, token_file: str | Path, group_wait: str = "1s") -> str:
    """``local_config`` as the YAML text Alertmanager reads."""
    return dump_yaml(local_config(webhook_url, token_file, group_wait))
