"""Ingest chains: each batch carries the hash of the one before; any alteration is detected."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.batch_codec import digest, encode_records
from domain.errors import ChainIntegrityError
from domain.ingest import (
    GENESIS_HASH,
    ChainHead,
    IngestChain,
    batch_fault,
    chain_id_for,
    next_batch,
    utc_text,
    verify_chain,
)
from domain.provenance import Provenance
from domain.record import NormalisedRecord, record_id_for
from domain.rejection import RejectedRecord, RejectionReason

DATASET = "gba.traffic.sensor-readings"
Batch = IngestChain.BatchRecorded


def provenance(n: int) -> Provenance:
    return Provenance(
        source_uri=f"https://data.example.gov.hk/feeds/speed/{n}.json",
        received_at=datetime(2025, 6, 1, 12, n, tzinfo=UTC),
        payload_sha256=f"{n:064x}",
        connector="tabular",
        connector_version="1.0.0",
        region="hk",
        wire_schema_version=1,
        trace_id=f"{n + 1:032x}",
    )


def records(n: int) -> list[NormalisedRecord]:
    return [
        [record_id_for(DATASET, [f"s{n}-{i}", i]), "hk", f"s{n}-{i}", i, 22.3, 114.1, float(i)]
        for i in range(n % 3 + 1)
    ]


def rejections(n: int) -> list[RejectedRecord]:
    return [
        RejectedRecord(i, RejectionReason.WRONG_TYPE, f"field 'speed' bad in {n}", None, "{}")
        for i in range(n % 2 + 1)
    ]


def chain(length: int, partition: int = 0) -> list[Batch]:
    head = ChainHead.genesis(chain_id_for(DATASET, partition))
    batches = []
    for n in range(length):
        batch = next_batch(
            head,
            dataset_id=DATASET,
            partition=partition,
            source=f"baylink.ingest.{DATASET}.v1:{partition}@{n}",
            provenance=provenance(n),
            accepted=records(n),
            rejected=rejections(n),
            duplicate_count=n % 2,
        )
        batches.append(batch)
        head = ChainHead.after(batch)
    return batches


def test_a_chain_of_batches_verifies_and_ends_at_its_head() -> None:
    batches = chain(5)

    head = verify_chain(batches)

    assert head == ChainHead.after(batches[-1])
    assert head is not None
    assert head.version == 5
    assert head.accepted_total == sum(len(records(n)) for n in range(5))
    assert head.rejected_total == sum(len(rejections(n)) for n in range(5))


def test_the_first_batch_follows_the_genesis_hash_and_each_follows_the_one_before() -> None:
    batches = chain(3)

    assert batches[0].previous_hash == GENESIS_HASH
    assert [b.previous_hash for b in batches[1:]] == [b.hash for b in batches[:-1]]
    assert [b.originator_version for b in batches] == [1, 2, 3]
    assert len({b.hash for b in batches}) == 3


def test_an_empty_chain_has_no_head() -> None:
    assert verify_chain([]) is None


def test_a_batch_gives_back_its_records_and_rejections() -> None:
    batch = chain(3)[2]

    assert batch.accepted() == records(2)
    assert batch.rejected() == rejections(2)
    assert batch.record_count == len(records(2))


def test_each_partition_has_its_own_stable_chain() -> None:
    assert chain_id_for(DATASET, 0) == chain_id_for(DATASET, 0)
    assert chain_id_for(DATASET, 0) != chain_id_for(DATASET, 1)
    assert chain_id_for(DATASET, 0) != chain_id_for("hk.traffic.other", 0)


def _changed(batch: Batch, **changes: Any) -> Batch:
    return dataclasses.replace(batch, **changes)


def _other_records(batch: Batch) -> Batch:
    return _changed(batch, records=encode_records([[*r[:-1], -1.0] for r in batch.accepted()]))


def _other_records_with_their_digest(batch: Batch) -> Batch:
    payload = encode_records([[*r[:-1], -1.0] for r in batch.accepted()])
    return _changed(batch, records=payload, records_digest=digest(payload))


def _undecodable_records_with_their_digest(batch: Batch) -> Batch:
    payload = b"\xc1 not msgpack"
    return _changed(batch, records=payload, records_digest=digest(payload))


def _fewer_records(batch: Batch) -> Batch:
    payload = encode_records(batch.accepted()[:-1])
    return _changed(batch, records=payload, records_digest=digest(payload))


def _other_rejection(batch: Batch) -> Batch:
    rows = [list(row) for row in batch.rejections]
    rows[0][2] = "nothing was wrong"
    return _changed(batch, rejections=rows)


def _rejection_dropped(batch: Batch) -> Batch:
    return _changed(batch, rejections=batch.rejections[1:])


def _other_provenance(batch: Batch) -> Batch:
    return _changed(batch, provenance={**batch.provenance, "source_uri": "https://elsewhere/"})


def _provenance_region(batch: Batch) -> Batch:
    return _changed(batch, provenance={**batch.provenance, "region": "mo"})


TAMPERINGS: dict[str, Callable[[Batch], Batch]] = {
    "records bytes": _other_records,
    "records and their digest": _other_records_with_their_digest,
    "undecodable records and their digest": _undecodable_records_with_their_digest,
    "a record removed": _fewer_records,
    "records digest": lambda b: _changed(b, records_digest="f" * 64),
    "record count": lambda b: _changed(b, record_count=b.record_count + 1),
    "a rejection's message": _other_rejection,
    "a rejection removed": _rejection_dropped,
    "provenance source": _other_provenance,
    "provenance region": _provenance_region,
    "duplicate count": lambda b: _changed(b, duplicate_count=b.duplicate_count + 1),
    "accepted total": lambda b: _changed(b, accepted_total=b.accepted_total + 1),
    "rejected total": lambda b: _changed(b, rejected_total=b.rejected_total - 1),
    "dataset": lambda b: _changed(b, dataset_id="hk.traffic.other"),
    "partition": lambda b: _changed(b, partition=b.partition + 1),
    "source": lambda b: _changed(b, source=b.source + "0"),
    "previous hash": lambda b: _changed(b, previous_hash="e" * 64),
    "hash": lambda b: _changed(b, hash="d" * 64),
    "version": lambda b: _changed(b, originator_version=b.originator_version + 1),
    "chain": lambda b: _changed(b, originator_id=chain_id_for(DATASET, 3)),
    "recorded time": lambda b: _changed(b, timestamp=b.timestamp + timedelta(seconds=1)),
}
# Which event field each tampering alters; every field of a batch must be covered.
ALTERED_FIELD = {
    "records bytes": "records",
    "records digest": "records_digest",
    "record count": "record_count",
    "a rejection's message": "rejections",
    "provenance source": "provenance",
    "duplicate count": "duplicate_count",
    "accepted total": "accepted_total",
    "rejected total": "rejected_total",
    "dataset": "dataset_id",
    "partition": "partition",
    "source": "source",
    "previous hash": "previous_hash",
    "hash": "hash",
    "version": "originator_version",
    "chain": "originator_id",
    "recorded time": "timestamp",
}


def test_every_field_of_a_batch_has_a_tampering_check() -> None:
    assert set(ALTERED_FIELD) <= set(TAMPERINGS)
    assert set(ALTERED_FIELD.values()) == {f.name for f in dataclasses.fields(Batch)}


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_altering_any_part_of_a_batch_is_detected(tampering: Callable[[Batch], Batch]) -> None:
    batches = chain(5)
    batches[2] = tampering(batches[2])

    with pytest.raises(ChainIntegrityError):
        verify_chain(batches)


@given(
    st.integers(min_value=0, max_value=5),
    st.sampled_from(sorted(TAMPERINGS)),
)
def test_any_tampering_with_any_batch_is_detected(position: int, name: str) -> None:
    batches = chain(6)
    batches[position] = TAMPERINGS[name](batches[position])

    with pytest.raises(ChainIntegrityError):
        verify_chain(batches)


@given(st.integers(min_value=0, max_value=5))
def test_removing_a_batch_is_detected_unless_it_is_the_last(position: int) -> None:
    batches = chain(6)
    del batches[position]

    if position == 5:
        assert verify_chain(batches) == ChainHead.after(batches[-1])
    else:
        with pytest.raises(ChainIntegrityError):
            verify_chain(batches)


@given(st.permutations(range(5)).filter(lambda order: list(order) != sorted(order)))
def test_batches_out_of_order_are_detected(order: list[int]) -> None:
    batches = chain(5)

    with pytest.raises(ChainIntegrityError, match="expected version"):
        verify_chain([batches[i] for i in order])


def test_a_batch_rehashed_after_tampering_breaks_the_link_to_the_next() -> None:
    batches = chain(3)
    forged = _other_provenance(batches[1])
    head = ChainHead.after(batches[0])
    batches[1] = next_batch(
        head,
        dataset_id=forged.dataset_id,
        partition=forged.partition,
        source=forged.source,
        provenance=Provenance.from_dict(forged.provenance),
        accepted=forged.accepted(),
        rejected=forged.rejected(),
        duplicate_count=forged.duplicate_count,
    )

    with pytest.raises(ChainIntegrityError, match="version 3: previous hash"):
        verify_chain(batches)


def test_batches_of_another_chain_cannot_be_spliced_in() -> None:
    ours, theirs = chain(3, partition=0), chain(3, partition=1)

    with pytest.raises(ChainIntegrityError):
        verify_chain([ours[0], theirs[1], ours[2]])


REASONS = {
    "chain_version",
    "chain_id",
    "chain_link",
    "batch_hash",
    "records_digest",
    "records_undecodable",
    "record_count",
    "accepted_total",
    "rejected_total",
}


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_each_tampering_is_named_by_a_reason_and_the_batch(
    tampering: Callable[[Batch], Batch],
) -> None:
    batches = chain(3)
    previous = ChainHead.after(batches[1])
    altered = tampering(batches[2])

    fault = batch_fault(previous, altered)

    assert batch_fault(previous, batches[2]) is None
    assert fault is not None
    assert fault.reason in REASONS
    assert f"version {altered.originator_version}" in fault.message


@given(st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=st.timezones()))
def test_batch_hashes_take_times_as_isoformat_writes_them_in_utc(moment: datetime) -> None:
    # Chains already stored were hashed over isoformat's text; the faster writer must match.
    assert utc_text(moment) == moment.astimezone(UTC).isoformat()
