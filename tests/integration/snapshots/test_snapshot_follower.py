"""The snapshot follower publishes what is new and reports each dataset's snapshot age,
including the snapshots it finds already published when it starts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from opentelemetry.metrics import CallbackOptions

from storage.object_store_local import LocalObjectStore
from streams.snapshot_follower import follow, snapshot_ages
from tests.integration.api.readings import store_readings

pytestmark = pytest.mark.integration


def _ages() -> dict[str, float]:
    return {
        str((o.attributes or {})["dataset"]): float(o.value)
        for o in snapshot_ages.observe(CallbackOptions())
    }


def test_a_restarted_follower_reports_the_age_of_snapshots_published_before(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    store = LocalObjectStore(tmp_path / "objects")
    stored = store_readings(url, store)  # publishes two snapshots, leaves a tail
    stop = threading.Event()
    stop.set()  # only load what is published, then stop
    snapshot_ages.forget()

    follow(url, store, interval_seconds=0.01, stop=stop)

    ages = _ages()
    assert 0 <= ages[stored.dataset.id] < 60
