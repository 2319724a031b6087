"""The AWS Load Balancer Controller's rules for an Ingress's `alb.ingress.kubernetes.io/actions.<name>`
annotation (its pkg/ingress/config_types.go: Action, ForwardActionConfig, TargetGroupTuple and their
validate()), to check what control/manifests renders without a controller (no tests here), and the
weighted split the ALB makes of an accepted one (the test cluster's network plays the ALB with it)."""

from __future__ import annotations

import json
from typing import Any

ACTION_PREFIX = "alb.ingress.kubernetes.io/actions."
ALB_MAX_WEIGHT = 999  # ELBv2 TargetGroupTuple.Weight: 0-999


def controller_errors(ingress: dict[str, Any]) -> list[str]:
    """What the controller would reject in the Ingress's actions; [] when it accepts them."""
    errors = []
    annotations = ingress["metadata"].get("annotations", {})
    backends = [path["backend"]["service"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    for backend in backends:
        if backend["port"] != {"name": "use-annotation"}:
            continue
        raw = annotations.get(ACTION_PREFIX + backend["name"])
        if raw is None:
            errors.append(f"backend {backend['name']} uses an annotation action that is not there")
            continue
        action = json.loads(raw)
        if set(action) - {"type", "targetGroupARN", "fixedResponseConfig", "redirectConfig", "forwardConfig"}:
            errors.append(f"unknown Action fields {set(action)}")
        if action.get("type") not in ("fixed-response", "forward", "redirect"):
            errors.append(f"unknown action type: {action.get('type')}")
            continue
        if action["type"] != "forward":
            continue
        if ("targetGroupARN" in action) == ("forwardConfig" in action):
            errors.append("precisely one of TargetGroupArn and ForwardConfig can be specified")
            continue
        forward = action["forwardConfig"]
        if set(forward) - {"targetGroups", "targetGroupStickinessConfig"}:
            errors.append(f"unknown ForwardActionConfig fields {set(forward)}")
        groups = forward.get("targetGroups", [])
        for group in groups:
            if set(group) - {"targetGroupARN", "serviceName", "servicePort", "weight"}:
                errors.append(f"unknown TargetGroupTuple fields {set(group)}")
            if ("targetGroupARN" in group) == ("serviceName" in group):
                errors.append("precisely one of targetGroupARN and serviceName can be specified")
            if "serviceName" in group and not isinstance(group.get("servicePort"), (int, str)):
                errors.append("missing servicePort")  # intstr.IntOrString
            weight = group.get("weight")
            if weight is not None and (not isinstance(weight, int) or not 0 <= weight <= ALB_MAX_WEIGHT):
                errors.append(f"weight {weight!r} is not an int64 the ALB takes (0-{ALB_MAX_WEIGHT})")
        if len(groups) > 1 and any("weight" not in group for group in groups):
            errors.append("weight must be set when route to multiple target groups")
        sticky = forward.get("targetGroupStickinessConfig", {})
        if set(sticky) - {"enabled", "durationSeconds"} or not isinstance(sticky.get("enabled", False), bool):
            errors.append(f"bad targetGroupStickinessConfig {sticky}")
    return errors


def forward_weights(ingress: dict[str, Any]) -> dict[str, int]:
    """Service name → weight of the weighted forward actions the Ingress's rules name, as the ALB
    splits them (a group without a weight counts 1, the controller's default for a single group);
    {} when no rule forwards through an annotation action."""
    annotations = ingress["metadata"].get("annotations") or {}
    weights: dict[str, int] = {}
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            backend = path["backend"]["service"]
            if backend["port"] != {"name": "use-annotation"} or ACTION_PREFIX + backend["name"] not in annotations:
                continue
            action = json.loads(annotations[ACTION_PREFIX + backend["name"]])
            for group in (action.get("forwardConfig") or {}).get("targetGroups") or []:
                if "serviceName" in group:
                    weights[group["serviceName"]] = int(group.get("weight", 1))
    return weights
