"""Records in, exactly once: against the real broker, with SQLite and with PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tests.integration.ingest.conftest import RunningPlatform
from tests.support.platform import audit_store, reading_rows, write_csv

pytestmark = pytest.mark.integration


def test_ten_thousand_readings_over_three_regions_are_each_stored_once(
    platform: RunningPlatform,
) -> None:
    rows = reading_rows(10_000, prefix="a")
    source = write_csv(platform.env.workdir / "ten-thousand.csv", rows)

    result = platform.env.cli(
        "ingest", str(source), "--dataset", platform.readings.id, "--wait", "--json"
    )

    outcome = json.loads(result.stdout)
    assert outcome["accepted"] == 10_000
    assert outcome["rejected"] == 0
    audit = audit_store(platform.ledger, platform.readings)
    assert audit.accepted_records == 10_000
    assert audit.distinct_record_ids == 10_000


def test_the_same_file_ingested_twice_is_still_stored_once(platform: RunningPlatform) -> None:
    rows = reading_rows(2_000, prefix="b")
    source = write_csv(platform.env.workdir / "twice.csv", rows)
    before = audit_store(platform.ledger, platform.readings).accepted_records

    first = json.loads(
        platform.env.cli(
            "ingest", str(source), "--dataset", platform.readings.id, "--wait", "--json"
        ).stdout
    )
    second = json.loads(
        platform.env.cli(
            "ingest", str(source), "--dataset", platform.readings.id, "--wait", "--json"
        ).stdout
    )

    assert (first["accepted"], first["duplicates"]) == (2_000, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 2_000)
    audit = audit_store(platform.ledger, platform.readings)
    assert audit.accepted_records == before + 2_000
    assert audit.distinct_record_ids == audit.accepted_records


def test_dataset_list_reports_counts_and_store_position(platform: RunningPlatform) -> None:
    listed = json.loads(platform.env.cli("dataset", "list", "--json").stdout)

    entry = next(item for item in listed if item["id"] == platform.readings.id)
    audit = audit_store(platform.ledger, platform.readings)
    assert entry["accepted"] == audit.accepted_records
    assert entry["rejected"] == audit.rejected
    assert entry["position"] == platform.ledger.position()
    assert entry["position"] > 0
