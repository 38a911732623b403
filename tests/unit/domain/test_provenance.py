"""Provenance names its source completely, and its trace ids only in their W3C form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ProvenanceError
from domain.provenance import Provenance

BASE: dict[str, Any] = {
    "source_uri": "https://data.gov.hk/speedmap.xml",
    "received_at": datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
    "payload_sha256": "a" * 64,
    "connector": "tabular",
    "connector_version": "1",
    "region": "hk",
    "wire_schema_version": 1,
}


def test_trace_and_span_ids_survive_a_round_trip() -> None:
    provenance = Provenance(
        **BASE, trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331"
    )

    assert Provenance.from_dict(provenance.as_dict()) == provenance
    assert provenance.as_dict()["span_id"] == "b7ad6b7169203331"


def test_provenance_without_a_span_keeps_the_form_it_had_before_span_ids() -> None:
    assert "span_id" not in Provenance(**BASE).as_dict()
    assert Provenance.from_dict(Provenance(**BASE).as_dict()).span_id is None


@given(st.text(max_size=20).filter(lambda t: len(t) != 16 or t.strip("0123456789abcdef")))
def test_a_span_id_that_is_not_16_lower_case_hex_digits_is_refused(span_id: str) -> None:
    with pytest.raises(ProvenanceError, match="span_id"):
        Provenance(**BASE, span_id=span_id)
