"""The catalog application: register, find and list dataset definitions."""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError

from domain.catalog import CatalogIndex, Dataset
from domain.dataset import DatasetDefinition
from domain.errors import DatasetAlreadyRegisteredError, DatasetNotFoundError
from domain.region import RegionRegistry
from storage.ledger import LedgerApplication


class Catalog(LedgerApplication):
    """Use cases over registered datasets; returns definitions, never aggregates."""

    def register(self, definition: DatasetDefinition) -> bool:
        """Register or revise a dataset; False when the same definition is registered already."""
        wanted = definition.as_dict()
        try:
            dataset: Dataset = self.repository.get(Dataset.create_id(definition.id))
        except AggregateNotFoundError:
            index = self._index()
            dataset = Dataset(dataset_id=definition.id, definition=wanted)
            index.add(definition.id)
            self.save(dataset, index)
            return True
        current = dataset.definition
        if current == wanted:
            return False
        if wanted["version"] == current["version"] and (
            wanted["fields"] != current["fields"] or wanted["key_fields"] != current["key_fields"]
        ):
            raise DatasetAlreadyRegisteredError(
                f"dataset {definition.id!r} version {current['version']} is registered with a "
                "different schema; raise its version to change fields or keys"
            )
        dataset.revise(wanted)
        self.save(dataset)
        return True

    def get(self, dataset_id: str, regions: RegionRegistry | None = None) -> DatasetDefinition:
        try:
            dataset: Dataset = self.repository.get(Dataset.create_id(dataset_id))
        except AggregateNotFoundError:
            raise DatasetNotFoundError(f"no dataset {dataset_id!r} is registered") from None
        return DatasetDefinition.from_dict(dataset.definition, regions)

    def list(self, regions: RegionRegistry | None = None) -> list[DatasetDefinition]:
        try:
            index: CatalogIndex = self.repository.get(CatalogIndex.create_id())
        except AggregateNotFoundError:
            return []
        return [self.get(dataset_id, regions) for dataset_id in sorted(index.dataset_ids)]

    def _index(self) -> CatalogIndex:
        try:
            return self.repository.get(CatalogIndex.create_id())
        except AggregateNotFoundError:
            return CatalogIndex()
