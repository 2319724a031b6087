"""Names of models, deployments and runs: Kubernetes object names and DNS labels, checked once."""

from __future__ import annotations

import re
from typing import Any

from control.errors import InvalidInput

# A DNS-1123 label, as Kubernetes checks names and label values: it ends with a letter or digit too.
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# A deployment names its Services `<deployment>` and `<deployment>-preview`: Service names are
# DNS-1035 labels (they start with a letter) of at most 63 characters.
DEPLOYMENT_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,53}[a-z0-9])?$")


def check_name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise InvalidInput(
            f"{field_name} must be 1-63 lower-case letters, digits or dashes, starting and ending with a "
            f"letter or digit; got {value!r}",
            field=field_name,
        )
    return value


def check_deployment_name(value: Any, field_name: str = "deployment") -> str:
    """A deployment's name: also its Services' names, so a DNS-1035 label with room for `-preview`."""
    if not isinstance(value, str) or not DEPLOYMENT_PATTERN.match(value):
        raise InvalidInput(
            f"{field_name} must be 1-55 lower-case letters, digits or dashes, starting with a letter and "
            f"ending with a letter or digit (it names the deployment's Services); got {value!r}",
            field=field_name,
        )
    return value
