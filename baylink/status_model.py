"""What `baylink status` shows, computed from the services' metrics (Prometheus text)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]

ACCEPTED = "baylink_records_accepted_total"
REJECTED = "baylink_records_rejected_total"
DUPLICATE = "baylink_records_duplicate_total"
LAG = "baylink_consumer_lag"
# Failed attempts in a row to store a partition's messages (streams/ingest_telemetry.py).
FAILED_ATTEMPTS = "baylink_ingest_store_failed_attempts"
SNAPSHOT_AGE = "baylink_snapshot_age_seconds"
# The API's request histogram (api/route_telemetry.py).
HTTP_COUNT = "baylink_api_request_duration_seconds_count"
HTTP_SUM = "baylink_api_request_duration_seconds_sum"


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text page, keyed by name and labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset(
                (k, v) for k, v in sample.labels.items() if not k.startswith("otel_scope_")
            )
            key = (sample.name, labels)
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


@dataclass
class DatasetStatus:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    records_per_second: float | None = None
    rejections: dict[str, int] = field(default_factory=dict)
    snapshot_age_seconds: float | None = None


@dataclass
class RouteStatus:
    route: str
    status: str
    requests: int
    mean_ms: float


@dataclass
class PlatformStatus:
    components: dict[str, str]
    datasets: dict[str, DatasetStatus]
    lag: list[tuple[str, int, int]]
    routes: list[RouteStatus]
    # Partitions whose messages the worker is failing to store, with the attempts so far.
    stalled: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def total_lag(self) -> int:
        return sum(lag for _, _, lag in self.lag)

    def as_dict(self) -> dict[str, Any]:
        return {
            "components": self.components,
            "datasets": {
                name: {
                    "accepted": d.accepted,
                    "rejected": d.rejected,
                    "duplicates": d.duplicates,
                    "records_per_second": d.records_per_second,
                    "rejections": d.rejections,
                    "snapshot_age_seconds": d.snapshot_age_seconds,
                }
                for name, d in sorted(self.datasets.items())
            },
            "lag": [{"topic": t, "partition": p, "lag": n} for t, p, n in self.lag],
            "total_lag": self.total_lag,
            "stalled": [
                {"topic": t, "partition": p, "failed_attempts": n}
                for (t, p), n in sorted(self.stalled.items())
            ],
            "api": [
                {"route": r.route, "status": r.status, "requests": r.requests, "mean_ms": r.mean_ms}
                for r in self.routes
            ],
        }


def _label(labels: Labels, name: str) -> str:
    return dict(labels).get(name, "")


def _by(samples: Samples, metric: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (name, labels), value in samples.items():
        if name == metric:
            out[_label(labels, label)] += value
    return dict(out)


def platform_status(
    scraped: Mapping[str, Samples | None],
    earlier: Mapping[str, Samples | None] | None = None,
    seconds_between: float | None = None,
) -> PlatformStatus:
    """The status from each component's samples (None: it did not answer); with an earlier
    scrape and the seconds between, accepted records per second too."""
    components = {name: ("up" if s is not None else "down") for name, s in scraped.items()}
    merged = _merge(s for s in scraped.values() if s is not None)
    datasets: dict[str, DatasetStatus] = defaultdict(DatasetStatus)
    for dataset, value in _by(merged, ACCEPTED, "dataset").items():
        datasets[dataset].accepted = int(value)
    for dataset, value in _by(merged, DUPLICATE, "dataset").items():
        datasets[dataset].duplicates = int(value)
    for (name, labels), value in merged.items():
        if name == REJECTED:
            entry = datasets[_label(labels, "dataset")]
            entry.rejected += int(value)
            reason = _label(labels, "reason")
            entry.rejections[reason] = entry.rejections.get(reason, 0) + int(value)
    for dataset, value in _by(merged, SNAPSHOT_AGE, "dataset").items():
        datasets[dataset].snapshot_age_seconds = round(value, 1)
    if earlier is not None and seconds_between:
        before = _by(_merge(s for s in earlier.values() if s is not None), ACCEPTED, "dataset")
        for dataset, entry in datasets.items():
            grown = entry.accepted - before.get(dataset, 0.0)
            entry.records_per_second = round(max(grown, 0.0) / seconds_between, 1)
    lag = sorted(
        (_label(labels, "topic"), int(_label(labels, "partition") or 0), int(value))
        for (name, labels), value in merged.items()
        if name == LAG
    )
    stalled = {
        (_label(labels, "topic"), int(_label(labels, "partition") or 0)): int(value)
        for (name, labels), value in merged.items()
        if name == FAILED_ATTEMPTS and value > 0
    }
    return PlatformStatus(components, dict(datasets), lag, _routes(merged), stalled)


def _routes(samples: Samples) -> list[RouteStatus]:
    counts: dict[tuple[str, str], float] = defaultdict(float)
    totals_ms: dict[tuple[str, str], float] = defaultdict(float)
    for (name, labels), count in samples.items():
        if name != HTTP_COUNT or not count:
            continue
        key = (_label(labels, "http_route"), _label(labels, "http_response_status_code"))
        counts[key] += count
        totals_ms[key] += samples.get((HTTP_SUM, labels), 0.0) * 1000.0
    return [
        RouteStatus(route, status, int(count), round(totals_ms[(route, status)] / count, 2))
        for (route, status), count in sorted(counts.items())
    ]


def _merge(pages: Iterable[Samples]) -> Samples:
    merged: Samples = {}
    for page in pages:
        for key, value in page.items():
            merged[key] = merged.get(key, 0.0) + value
    return merged
