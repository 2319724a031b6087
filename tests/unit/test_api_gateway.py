"""The local API Gateway stand-in: its token bucket, and its figures against the Terraform stage."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest

from control.local.api_gateway import BURST, RATE_PER_SECOND, TokenBucket

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_refills_it() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [0, 0, 0, 0.5]  # the 4th waits half a second
    clock.now += 0.5
    assert bucket.take() == 0 and bucket.take() == 0.5
    clock.now += 60  # a long pause refills to the burst, not beyond
    assert [bucket.take() == 0 for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (5, 0)])
def test_a_bucket_that_could_never_pass_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        TokenBucket(rate, burst)


def test_the_local_throttle_is_the_stage_throttle_in_terraform() -> None:
    with (REPO / "terraform" / "modules" / "functions" / "api.tf").open() as handle:
        parsed = hcl2.load(handle)
    kind = '"aws_api_gateway_method_settings"'  # python-hcl2 keeps the quotes
    settings = next(block["settings"][0] for r in parsed["resource"] if kind in r for block in r[kind].values())
    assert (settings["throttling_rate_limit"], settings["throttling_burst_limit"]) == (RATE_PER_SECOND, BURST)
