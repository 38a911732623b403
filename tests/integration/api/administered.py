"""A governed store without records, for tests of the governance routes: the three datasets
registered, the partners, whitelist rules and agreements of governed.py; and a fingerprint of
everything governance holds, to show that a refused request changed nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eventsourcing.utils import get_topic
from fastapi import FastAPI

from domain.access import AccessRecord
from storage.catalog import Catalog
from storage.governance import Governance
from tests.integration.api.conftest import app_over
from tests.integration.api.governed import DATASETS, govern
from tests.support.services import fresh_postgres_url

_ACCESS_RECORDED = get_topic(vars(AccessRecord)["Recorded"])


@dataclass
class Administered:
    app: FastAPI
    event_store_url: str
    keys: dict[str, str]


@contextmanager
def administered(directory: Path, event_store: str) -> Iterator[Administered]:
    """The store on ``event_store`` (sqlite or postgres) and an app over it."""
    if event_store == "sqlite":
        with _served(directory, f"sqlite:///{directory / 'events.sqlite'}") as served:
            yield served
        return
    with fresh_postgres_url() as url, _served(directory, url) as served:
        yield served


@contextmanager
def _served(directory: Path, event_store_url: str) -> Iterator[Administered]:
    catalog = Catalog(event_store_url)
    try:
        for dataset in DATASETS.values():
            catalog.register(dataset)
    finally:
        catalog.close()
    keys = govern(event_store_url)
    # The tests run far faster than any partner would.
    with app_over(
        event_store_url,
        (directory / "objects").as_uri(),
        rate_limit_per_second=1e6,
        rate_limit_burst=10**6,
    ) as app:
        yield Administered(app, event_store_url, keys)


def governance_state(governance: Governance) -> tuple[object, ...]:
    """Partners with their keys, the whitelist, agreements with their history, and how many
    events other than access records the store holds."""
    changes = 0
    start = 1
    while batch := governance.recorder.select_notifications(start=start, limit=500):
        changes += sum(1 for n in batch if n.topic != _ACCESS_RECORDED)
        start = batch[-1].id + 1
    return (
        governance.partners(),
        governance.whitelist(),
        governance.agreements(),
        changes,
    )
