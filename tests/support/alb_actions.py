"""The AWS Load Balancer Controller's rules for an Ingress's `alb.ingress.kubernetes.io/actions.<name>`
annotation (its pkg/ingress/config_types.go: Action, ForwardActionConfig, TargetGroupTuple and their
validate()), to check what control/manifests renders without a controller (no tests here)."""

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
