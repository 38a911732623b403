"""Exponential backoff with full jitter, capped: how long to wait before retrying a source.

"Full jitter" draws each delay uniformly from [0, min(cap, base * 2**attempt)], so many
connectors retrying one struggling server spread out instead of arriving together.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for successive failures; ``reset`` after a success starts the series again."""

    base: float = 1.0
    cap: float = 60.0
    random: Callable[[], float] = field(default=_random.random, repr=False)
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")

    def ceiling(self) -> float:
        """The largest delay the next failure may draw."""
        # 2**attempt overflows float long after it passes any cap; stop doubling at 64.
        return min(self.cap, self.base * 2.0 ** min(self.attempt, 64))

    def next_delay(self) -> float:
        delay = self.random() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
