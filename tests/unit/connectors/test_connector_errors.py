"""Connector errors carry a machine-readable reason and survive a trip between processes."""

from __future__ import annotations

import pickle

from connectors.errors import ConnectorError, PayloadError, SourceError


def test_payload_error_keeps_its_reason_and_message_when_pickled() -> None:
    error = PayloadError("bad-encoding", "not UTF-8 at byte offset 3 (line 1): byte 0xff")

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, PayloadError)
    assert (copy.reason, str(copy)) == (error.reason, str(error))


def test_payload_and_source_errors_share_the_connector_base() -> None:
    assert issubclass(PayloadError, ConnectorError)
    assert issubclass(SourceError, ConnectorError)
