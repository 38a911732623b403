"""The catalog: which datasets exist, each with the definition it was registered under."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_DATASET_NAMESPACE = uuid5(NAMESPACE_URL, "urn:baylink:dataset")
CATALOG_INDEX_ID = uuid5(NAMESPACE_URL, "urn:baylink:catalog-index")


class Dataset(Aggregate):
    """A registered dataset; its definition is kept as the plain mapping it was read from."""

    @staticmethod
    def create_id(dataset_id: str) -> UUID:
        return uuid5(_DATASET_NAMESPACE, dataset_id)

    @event("Registered")
    def __init__(self, dataset_id: str, definition: dict[str, Any]) -> None:
        self.dataset_id = dataset_id
        self.definition = definition

    @event("Revised")
    def revise(self, definition: dict[str, Any]) -> None:
        self.definition = definition


class CatalogIndex(Aggregate):
    """The list of registered dataset ids, so the catalog can be listed without a scan."""

    @staticmethod
    def create_id() -> UUID:
        return CATALOG_INDEX_ID

    @event("Created")
    def __init__(self) -> None:
        self.dataset_ids: list[str] = []

    @event("DatasetAdded")
    def add(self, dataset_id: str) -> None:
        self.dataset_ids.append(dataset_id)
