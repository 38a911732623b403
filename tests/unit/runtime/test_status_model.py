"""`baylink status` reads the services' Prometheus text and sums what operators watch."""

from __future__ import annotations

from rich.console import Console

from baylink.cli_status import _render
from baylink.status_model import parse_metrics, platform_status

SCOPE = 'otel_scope_name="baylink.streams",otel_scope_version=""'
WORKER = f"""
# TYPE baylink_records_accepted_total counter
baylink_records_accepted_total{{dataset="d",region="hk",{SCOPE}}} 10.0
baylink_records_accepted_total{{dataset="d",region="mo",{SCOPE}}} 5.0
# TYPE baylink_records_rejected_total counter
baylink_records_rejected_total{{dataset="d",reason="wrong-type",region="hk",{SCOPE}}} 2.0
baylink_records_rejected_total{{dataset="d",reason="wrong-type",region="mo",{SCOPE}}} 1.0
baylink_records_rejected_total{{dataset="d",reason="unknown-region",region="hk",{SCOPE}}} 4.0
# TYPE baylink_records_duplicate_total counter
baylink_records_duplicate_total{{dataset="d",{SCOPE}}} 7.0
# TYPE baylink_consumer_lag gauge
baylink_consumer_lag{{partition="1",topic="t",{SCOPE}}} 3.0
baylink_consumer_lag{{partition="0",topic="t",{SCOPE}}} 0.0
# TYPE baylink_ingest_store_failed_attempts gauge
baylink_ingest_store_failed_attempts{{partition="1",topic="t",{SCOPE}}} 4.0
baylink_ingest_store_failed_attempts{{partition="0",topic="t",{SCOPE}}} 0.0
"""
SNAPSHOTS = """
# TYPE baylink_snapshot_age_seconds gauge
baylink_snapshot_age_seconds{dataset="d"} 12.34
"""
GET = 'http_request_method="GET",http_response_status_code="200",http_route="/v1/datasets"'
HEAD = GET.replace("GET", "HEAD")
API = f"""
# TYPE baylink_api_request_duration_seconds histogram
baylink_api_request_duration_seconds_count{{{GET}}} 4.0
baylink_api_request_duration_seconds_sum{{{GET}}} 0.2
baylink_api_request_duration_seconds_count{{{HEAD}}} 1.0
baylink_api_request_duration_seconds_sum{{{HEAD}}} 0.05
"""


def test_counts_lag_ages_and_routes_add_up_across_services() -> None:
    view = platform_status(
        {
            "worker": parse_metrics(WORKER),
            "snapshots": parse_metrics(SNAPSHOTS),
            "api": parse_metrics(API),
            "relay": None,
        }
    )

    d = view.datasets["d"]
    assert (d.accepted, d.rejected, d.duplicates) == (15, 7, 7)
    assert d.rejections == {"wrong-type": 3, "unknown-region": 4}
    assert d.snapshot_age_seconds == 12.3
    assert d.records_per_second is None
    assert view.lag == [("t", 0, 0), ("t", 1, 3)]
    assert view.total_lag == 3
    assert view.stalled == {("t", 1): 4}  # partition 0 stored again after failing
    assert view.components == {"worker": "up", "snapshots": "up", "api": "up", "relay": "down"}
    [route] = view.routes
    assert (route.route, route.status, route.requests, route.mean_ms) == (
        "/v1/datasets",
        "200",
        5,
        50.0,
    )


def test_throughput_is_the_growth_of_accepted_records_between_two_scrapes() -> None:
    before = parse_metrics(WORKER)
    after = parse_metrics(WORKER.replace("} 10.0", "} 30.0"))

    view = platform_status({"worker": after}, {"worker": before}, seconds_between=4.0)

    assert view.datasets["d"].records_per_second == 5.0
    assert view.as_dict()["datasets"]["d"]["records_per_second"] == 5.0


def test_a_partition_failing_to_store_is_shown_with_its_attempts() -> None:
    view = platform_status({"worker": parse_metrics(WORKER)})
    console = Console(record=True, width=120, color_system=None)
    console.print(_render(view))
    lines = console.export_text().splitlines()

    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]
    assert ["t", "0", "0", "ok"] in rows
    assert ["t", "1", "3", "failing, 4 attempts"] in rows
    assert view.as_dict()["stalled"] == [{"topic": "t", "partition": 1, "failed_attempts": 4}]
