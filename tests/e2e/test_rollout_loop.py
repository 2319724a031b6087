"""Serving end to end on the local clusters: deploy v1, blue-green to v2 under load, a fault in v2
after the promotion, the real Prometheus fires, the real Alertmanager delivers, traffic is back on
v1, and the load generator sees no failed request outside the fault itself
(tests/support/rollout_loop.py; tests/e2e/test_eks_loop.py runs the same loop on the EKS adapters)."""

import pytest

from tests.support.rollout_loop import alert_after_promotion_rolls_back_to_last_known_good

pytestmark = pytest.mark.e2e


def test_alert_after_promotion_rolls_back_to_last_known_good(embedded, endpoints, aws):
    alert_after_promotion_rolls_back_to_last_known_good(embedded, endpoints, aws)
