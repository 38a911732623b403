"""Accepted records passed on encoded: ids, counts per region, and removing duplicates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.batch_codec import EncodedRecords, decode_records, encode_records

ids = st.sampled_from([f"{n:032x}" for n in range(12)])
records = st.lists(
    st.tuples(ids, st.sampled_from(["hk", "mo", "gd-zhuhai"]), st.integers(-5, 5)).map(list),
    max_size=30,
)


@given(records)
def test_encoding_keeps_the_records_their_ids_and_counts_per_region(
    batch: list[list[object]],
) -> None:
    encoded = EncodedRecords.of(batch)

    assert encoded.payload == encode_records(batch)
    assert decode_records(encoded.payload) == batch
    assert encoded.ids == [r[0] for r in batch]
    assert len(encoded) == len(batch)
    assert sum(encoded.regions.values()) == len(batch)
    for region, count in encoded.regions.items():
        assert count == sum(1 for r in batch if r[1] == region)


@given(records, st.sets(ids))
def test_without_keeps_the_first_record_of_each_unseen_id(
    batch: list[list[object]], seen: set[str]
) -> None:
    before = set(seen)

    kept, removed = EncodedRecords.of(batch).without(seen)

    expected: list[list[object]] = []
    taken = set(before)
    for record in batch:
        if record[0] not in taken:
            taken.add(str(record[0]))
            expected.append(record)
    assert decode_records(kept.payload) == expected
    assert kept.ids == [r[0] for r in expected]
    assert removed == len(batch) - len(expected)
    assert seen == taken
