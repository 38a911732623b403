"""Request paths are named by the API's own route templates, never by their values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.route_telemetry import UNMATCHED, route_matcher

PATHS = [
    "/v1/datasets",
    "/v1/datasets/{dataset_id}",
    "/v1/datasets/{dataset_id}/records",
    "/v1/datasets/{dataset_id}/snapshots",
    "/v1/snapshots/{snapshot_id}",
    "/v1/records/{record_id}/provenance",
]
match = route_matcher(PATHS)
segments = st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1)


def test_each_path_gets_its_template() -> None:
    assert match("/v1/datasets") == "/v1/datasets"
    assert match("/v1/datasets/hk.traffic.speeds") == "/v1/datasets/{dataset_id}"
    assert match("/v1/datasets/hk.traffic.speeds/records") == "/v1/datasets/{dataset_id}/records"
    assert match("/v1/records/0123/provenance") == "/v1/records/{record_id}/provenance"
    assert match("/v1/datasets/a/b/c") == UNMATCHED
    assert match("/v2/datasets") == UNMATCHED


@given(segments)
def test_a_value_never_becomes_part_of_a_route_name(value: str) -> None:
    assert match(f"/v1/datasets/{value}") == "/v1/datasets/{dataset_id}"
    assert match(f"/v1/records/{value}/provenance") == "/v1/records/{record_id}/provenance"
