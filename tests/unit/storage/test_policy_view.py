"""A decision applied to records: only its columns, each transformation as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.dataset import DatasetDefinition
from domain.policy import Decision, DecisionReason
from domain.transformation import Transformation
from storage.h3_cells import cell_centre
from storage.parquet_snapshot import record_schema
from storage.policy_view import MASK, partner_view, pseudonym_key

DATASET = DatasetDefinition.from_dict(
    {
        "id": "gd-shenzhen.traffic.trips",
        "kind": "traffic",
        "owner_region": "gd-shenzhen",
        "title": "Trips",
        "time_field": "at",
        "key_fields": ["trip", "at"],
        "geometry": {"lat": "lat", "lon": "lon"},
        "fields": [
            {"name": "trip", "type": "string"},
            {"name": "at", "type": "timestamp"},
            {"name": "lat", "type": "float64"},
            {"name": "lon", "type": "float64"},
            {"name": "speed", "type": "float64"},
            {"name": "plate", "type": "string", "classification": "sensitive"},
            {"name": "driver", "type": "string", "classification": "sensitive"},
        ],
    }
)
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
KEY = pseudonym_key(b"server secret", "hk-transport-department")


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=record_schema(DATASET))


def _rows(count: int = 6) -> list[dict[str, Any]]:
    return [
        {
            "record_id": f"r{i}",
            "region": "gd-shenzhen",
            "trip": f"t{i % 2}",
            "at": T0 + timedelta(minutes=17 * i),
            "lat": 22.5431 + i / 1000,
            "lon": 114.0579 - i / 1000,
            "speed": 10.0 * i,
            "plate": f"粤B{i:05d}",
            "driver": None if i == 3 else f"driver-{i % 3}",
        }
        for i in range(count)
    ]


def _decision(columns: tuple[str, ...], *transformations: dict[str, Any]) -> Decision:
    return Decision(
        True,
        DecisionReason.AGREEMENT,
        "test",
        DATASET.id,
        1,
        "a-1",
        columns=columns,
        transformations=tuple(Transformation.from_dict(t) for t in transformations),
    )


def test_only_the_decided_columns_are_seen() -> None:
    view = partner_view(_table(_rows()), DATASET, _decision(("trip", "at", "speed")), KEY)
    assert view.column_names == ["record_id", "region", "trip", "at", "speed"]
    assert view.num_rows == 6


def test_a_denied_decision_sees_nothing() -> None:
    denied = Decision(False, DecisionReason.NO_AGREEMENT, "no", DATASET.id, 1)
    view = partner_view(_table(_rows()), DATASET, denied, KEY)
    assert view.num_columns == 0
    assert view.num_rows == 0


def test_masking_hides_all_but_the_last_characters_and_keeps_nulls() -> None:
    view = partner_view(
        _table(_rows()),
        DATASET,
        _decision(("plate", "driver"), {"kind": "mask", "field": "plate", "keep": 2},
                  {"kind": "mask", "field": "driver"}),
        KEY,
    )  # fmt: skip
    assert view["plate"].to_pylist()[:2] == [MASK + "00", MASK + "01"]
    assert view["driver"].to_pylist()[2:4] == [MASK, None]


def test_pseudonyms_are_stable_per_consumer_and_differ_between_consumers() -> None:
    decision = _decision(("driver",), {"kind": "pseudonymise", "field": "driver"})
    mine = partner_view(_table(_rows()), DATASET, decision, KEY)["driver"].to_pylist()
    theirs = partner_view(
        _table(_rows()), DATASET, decision, pseudonym_key(b"server secret", "mo-dsat")
    )["driver"].to_pylist()
    assert mine[1] == mine[4]  # driver-1 twice, one pseudonym
    assert mine[2] == mine[5]
    assert len({mine[0], mine[1], mine[2]}) == 3
    assert mine[3] is None
    assert all(value is None or len(value) == 32 for value in mine)
    assert not {v for v in mine if v} & {v for v in theirs if v}
    assert "driver-1" not in mine


def test_time_and_location_are_coarsened() -> None:
    view = partner_view(
        _table(_rows()),
        DATASET,
        _decision(("at", "lat", "lon"), {"kind": "coarsen_time", "field": "at", "unit": "hour"},
                  {"kind": "coarsen_location", "grid_degrees": 0.01}),
        KEY,
    )  # fmt: skip
    assert view["at"].to_pylist()[:5] == [T0] * 4 + [T0 + timedelta(hours=1)]
    assert set(view["lat"].to_pylist()) <= {22.545, 22.555}
    assert set(view["lon"].to_pylist()) == {114.055}


def test_dropping_removes_the_column() -> None:
    view = partner_view(
        _table(_rows()), DATASET, _decision(("trip", "plate"), {"kind": "drop", "field": "plate"}),
        KEY,
    )  # fmt: skip
    assert "plate" not in view.column_names


def test_aggregation_leaves_out_groups_smaller_than_the_minimum() -> None:
    view = partner_view(
        _table(_rows(8)),
        DATASET,
        _decision(("trip", "at", "speed"),
                  {"kind": "aggregate", "window": "hour", "group_by": ["trip"], "min_count": 2,
                   "measures": {"speed": "mean"}}),
        KEY,
    )  # fmt: skip
    # 8 rows 17 minutes apart: 08:00-08:51 hold r0-r3, 09:08-09:59 r4-r7; trips alternate.
    assert view.column_names == ["window_start", "trip", "count", "mean_speed"]
    assert view.to_pylist() == [
        {"window_start": T0, "trip": "t0", "count": 2, "mean_speed": 10.0},
        {"window_start": T0, "trip": "t1", "count": 2, "mean_speed": 20.0},
        {"window_start": T0 + timedelta(hours=1), "trip": "t0", "count": 2, "mean_speed": 50.0},
        {"window_start": T0 + timedelta(hours=1), "trip": "t1", "count": 2, "mean_speed": 60.0},
    ]
    sparse = partner_view(
        _table(_rows(8)),
        DATASET,
        _decision(("trip", "at"),
                  {"kind": "aggregate", "window": "hour", "group_by": ["trip"], "min_count": 3}),
        KEY,
    )  # fmt: skip
    assert sparse.num_rows == 0


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.sampled_from([f.name for f in DATASET.fields])),
    st.integers(min_value=0, max_value=20),
)
def test_a_view_never_holds_a_column_outside_the_decision(columns: set[str], count: int) -> None:
    decided = tuple(n for n in DATASET.field_names if n in columns)
    view = partner_view(_table(_rows(count)), DATASET, _decision(decided), KEY)
    assert set(view.column_names) <= {"record_id", "region", *decided}
    assert view.num_rows == count


def test_coarsening_to_h3_cells_sends_the_cell_and_its_centre_for_the_point() -> None:
    rows = _rows()
    view = partner_view(
        _table(rows), DATASET,
        _decision(("lat", "lon", "speed"), {"kind": "coarsen_location", "h3_resolution": 7}), KEY,
    )  # fmt: skip

    assert view.column_names == ["record_id", "region", "lat", "lon", "speed", "h3_cell"]
    for row, sent in zip(rows, view.to_pylist(), strict=True):
        cell = h3.latlng_to_cell(row["lat"], row["lon"], 7)
        assert sent["h3_cell"] == cell
        assert (sent["lat"], sent["lon"]) == cell_centre(cell)
        assert (sent["lat"], sent["lon"]) != (row["lat"], row["lon"])


def test_one_coordinate_without_the_other_is_not_sent_exactly() -> None:
    view = partner_view(
        _table(_rows()), DATASET,
        _decision(("lat", "speed"), {"kind": "coarsen_location", "h3_resolution": 7}), KEY,
    )  # fmt: skip

    assert view.column_names == ["record_id", "region", "speed"]


def test_a_dropped_coordinate_takes_its_pair_with_it_whatever_the_order() -> None:
    coarsen = {"kind": "coarsen_location", "h3_resolution": 7}
    drop = {"kind": "drop", "field": "lon"}
    for order in ((coarsen, drop), (drop, coarsen)):
        view = partner_view(_table(_rows()), DATASET, _decision(("lat", "lon"), *order), KEY)
        assert view.column_names == ["record_id", "region"]
