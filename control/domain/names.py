"""Names of models, deployments and runs: Kubernetes object names and DNS labels, checked once."""

from __future__ import annotations

import re
from typing import Any

from control.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise InvalidInput(
            f"{field_name} must be 1-63 lower-case letters, digits or dashes, starting with a letter "
            f"or digit; got {value!r}",
            field=field_name,
        )
    return value
