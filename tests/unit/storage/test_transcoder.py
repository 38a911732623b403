"""Stored event state as msgpack: bytes stay bytes and times keep their instant and zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from storage.transcoder import MsgpackTranscoder

_utc_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary()
_state = st.recursive(
    _leaves | _utc_times,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_state)
def test_event_state_comes_back_as_it_went_in(state: object) -> None:
    transcoder = MsgpackTranscoder()

    assert transcoder.decode(transcoder.encode(state)) == state


def test_bytes_are_stored_as_bytes_not_text() -> None:
    transcoder = MsgpackTranscoder()
    payload = bytes(range(256))

    encoded = transcoder.encode({"records": payload})

    assert payload in encoded
    assert transcoder.decode(encoded) == {"records": payload}


def test_a_zone_aware_time_keeps_its_instant_to_the_microsecond() -> None:
    transcoder = MsgpackTranscoder()
    in_hong_kong = datetime(2025, 6, 1, 19, 55, 0, 123456, tzinfo=timezone(timedelta(hours=8)))

    decoded = transcoder.decode(transcoder.encode({"at": in_hong_kong}))["at"]

    assert isinstance(decoded, datetime)
    assert decoded == in_hong_kong
    assert decoded.utcoffset() is not None


def test_encoding_is_deterministic() -> None:
    state = {"b": b"\x00\x01", "a": [1, "two", None], "at": datetime(2025, 6, 1, tzinfo=UTC)}

    assert MsgpackTranscoder().encode(state) == MsgpackTranscoder().encode(dict(state))
