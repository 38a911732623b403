"""The per-partner token bucket: a burst at once, then the refill rate, each partner alone."""

from __future__ import annotations

import pytest

from api.errors import RateLimitedError
from api.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=0.5, burst=3, clock=clock)

    for _ in range(3):
        limiter.take("hk-transport-department")
    with pytest.raises(RateLimitedError) as refused:
        limiter.take("hk-transport-department")
    limiter.take("mo-dsat")  # another partner has its own bucket
    clock.now += 2.0
    limiter.take("hk-transport-department")

    assert refused.value.retry_after == 2
    assert refused.value.response_headers() == {"Retry-After": "2"}


def test_the_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=10, burst=2, clock=clock)
    clock.now += 3600

    limiter.take("p")
    limiter.take("p")

    with pytest.raises(RateLimitedError):
        limiter.take("p")
