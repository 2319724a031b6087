"""Names the platform turns into Kubernetes object names and label values (control/domain/names.py)."""

from __future__ import annotations

import pytest

from control.domain.names import check_deployment_name, check_name
from control.errors import InvalidInput


@pytest.mark.parametrize("name", ["churn", "a", "9lives", "churn-v2", "a" * 63])
def test_a_dns_label_is_a_name(name: str) -> None:
    assert check_name(name, "model") == name


@pytest.mark.parametrize("name", ["", "churn-", "-churn", "Churn", "churn_v2", "a" * 64, None, 3])
def test_anything_else_is_refused_naming_the_field(name: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_name(name, "model")
    assert caught.value.field == "model"


@pytest.mark.parametrize("name", ["churn", "c", "churn-api", "a" * 55])
def test_a_deployment_name_leaves_room_for_its_preview_service(name: str) -> None:
    assert check_deployment_name(name) == name


@pytest.mark.parametrize("name", ["9lives", "churn-", "a" * 56, "Churn"])
def test_a_deployment_name_a_service_could_not_carry_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="Services") as caught:
        check_deployment_name(name, "auto_deploy")
    assert caught.value.field == "auto_deploy"
