"""An evidence bundle's event lines: a stored event comes back exactly as it went in, and a
line that is not one is a ValueError, KeyError or TypeError, never anything else."""

from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.persistence import Notification
from hypothesis import given
from hypothesis import strategies as st

from storage.evidence_bundle import event_line, read_event_line

notifications = st.builds(
    Notification,
    id=st.integers(min_value=1, max_value=2**63 - 1),
    originator_id=st.uuids(),
    originator_version=st.integers(min_value=1, max_value=2**63 - 1),
    topic=st.text(),
    state=st.binary(),
)


@given(notifications)
def test_a_stored_event_reads_back_as_written(notification: Notification) -> None:
    line = event_line(notification)

    assert "\n" not in line
    assert read_event_line(line) == notification


@given(st.one_of(st.binary(), st.text().map(str.encode)))
def test_junk_is_one_of_three_errors(junk: bytes) -> None:
    try:
        read_event_line(junk)
    except (ValueError, KeyError, TypeError):
        return
    # A junk line that still reads is a well-formed event object.
    assert junk.lstrip().startswith(b"{")


def test_a_state_that_is_not_base64_is_refused() -> None:
    stored = Notification(id=1, originator_id=uuid4(), originator_version=1, topic="t", state=b"a")
    line = event_line(stored)

    with pytest.raises(ValueError, match=r"base64|padding"):
        read_event_line(line.replace('"state": "', '"state": "*'))
