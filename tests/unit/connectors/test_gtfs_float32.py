"""float32 values from GTFS-Realtime are kept as the shortest decimal that is the same float32."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.gtfs_feed import float32


def _as_float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _shortest_by_search(value: float) -> float:
    """The shortest %g form (1 to 9 significant digits) that reads back as the same float32."""
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if _as_float32(candidate) == value:
                return candidate
        except OverflowError:
            continue
    return value


@settings(max_examples=2000)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_the_kept_decimal_is_the_same_float32_and_the_shortest(value: float) -> None:
    kept = float32(value)
    assert _as_float32(kept) == value
    assert kept == _shortest_by_search(value)


def test_position_values_lose_the_digits_float64_invents() -> None:
    assert float32(_as_float32(28.0662212)) == 28.066221
    assert float32(_as_float32(-82.4133835)) == -82.41338
