"""The connector benchmark measures every registered case and reports its lowest ratio."""

from __future__ import annotations

import json

import pytest

from benchmarks import connectors as bench


def test_every_case_parses_all_its_generated_records() -> None:
    result = bench.run(records=200, rounds=1, only=[])
    formats = {figures["format"]: figures for figures in result["formats"]}
    assert set(formats) == {case.format for case in bench.CASES}
    for figures in formats.values():
        assert figures["records"] == 200
        assert figures["baylink_records_per_s"] > 0
        assert figures["raw_records_per_s"] > 0
    assert result["ratio"] == min(figures["ratio"] for figures in formats.values())
    json.dumps(result)  # the --json output must be serialisable as it is


def test_an_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="no benchmark for \\['nope'\\]"):
        bench.run(records=10, rounds=1, only=["nope"])
