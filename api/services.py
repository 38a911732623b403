"""The stores the API reads, opened on first use and closed when the app shuts down.

Opening on first use keeps `create_app` free of I/O, so the probes answer even while the
event store is unreachable, and an app built only for its OpenAPI document opens nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from api.errors import StoreUnavailableError
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from storage.ledger import LedgerApplication
from storage.object_store_factory import open_object_store
from storage.query import QueryService
from storage.snapshots import SnapshotLedger

_log = logging.getLogger("baylink.api")
T = TypeVar("T", bound=LedgerApplication)


class QueryServiceProvider:
    """Builds one QueryService over the given stores, once, however many threads ask."""

    def __init__(self, event_store_url: str, object_store_url: str) -> None:
        self.event_store_url = event_store_url
        self.object_store_url = object_store_url
        self._service: QueryService | None = None
        self._lock = threading.Lock()

    def get(self) -> QueryService:
        """The service, opening the stores on first use; StoreUnavailableError when they
        cannot be opened (the cause is logged, not sent: store URLs may carry passwords)."""
        with self._lock:
            if self._service is None:
                try:
                    self._service = _open(self.event_store_url, self.object_store_url)
                except Exception as error:
                    _log.exception("cannot open the event store or the object store")
                    raise StoreUnavailableError(
                        "the event store or the object store cannot be opened; the server "
                        "log says why"
                    ) from error
            return self._service

    def close(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
                self._service = None


def _open(event_store_url: str, object_store_url: str) -> QueryService:
    store = open_object_store(object_store_url)
    opened: list[Catalog | SnapshotLedger | IngestLedger] = []
    try:
        catalog = Catalog(event_store_url)
        opened.append(catalog)
        snapshots = SnapshotLedger(event_store_url)
        opened.append(snapshots)
        ingest = IngestLedger(event_store_url)
    except BaseException:
        for application in opened:
            application.close()
        raise
    return QueryService(catalog, snapshots, ingest, store)


class LedgerProvider(Generic[T]):
    """One application of the event store (governance, the access log), opened on first use."""

    def __init__(self, event_store_url: str, kind: Callable[[str], T]) -> None:
        self.event_store_url = event_store_url
        self._kind = kind
        self._application: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._application is None:
                try:
                    self._application = self._kind(self.event_store_url)
                except Exception as error:
                    _log.exception("cannot open the event store")
                    raise StoreUnavailableError(
                        "the event store cannot be opened; the server log says why"
                    ) from error
            return self._application

    def close(self) -> None:
        with self._lock:
            if self._application is not None:
                self._application.close()
                self._application = None
