"""Dataset definitions and policy decisions kept until the log says they may have changed.

Every page of every subscription needs its dataset's definition and its partner's decision,
and the check before each chunk needs the decision again; read from the store each time,
that replays the dataset, the partner, the partner's agreements and the whitelist, a hundred
times over for a hundred streams. Both are kept under the ``policy_version`` of the log tail
(storage.delivery_tail): a newer version (a change to a dataset, partner, agreement or the
whitelist read from the log) drops everything kept. A decision is also kept only for the
period in which time alone cannot change it (an agreement or a whitelist rule starting or
ending), so expiry still ends delivery on time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from domain.dataset import DatasetDefinition
from domain.policy import Caller, Decision
from storage.catalog import Catalog
from storage.governance import Governance


@dataclass(frozen=True, slots=True)
class _Kept:
    decision: Decision
    since: datetime | None
    until: datetime | None

    def holds_at(self, at: datetime) -> bool:
        return (self.since is None or self.since <= at) and (self.until is None or at < self.until)


class DecisionCache:
    """Thread-safe; reads the store only on a miss."""

    def __init__(self, catalog: Catalog, governance: Governance) -> None:
        self._catalog = catalog
        self._governance = governance
        self._lock = threading.Lock()
        self._version = -1
        self._datasets: dict[str, DatasetDefinition] = {}
        self._decisions: dict[tuple[str, str], _Kept] = {}

    def dataset(self, dataset_id: str, version: int) -> DatasetDefinition:
        with self._lock:
            self._move_to(version)
            kept = self._datasets.get(dataset_id)
        if kept is not None:
            return kept
        dataset = self._catalog.get(dataset_id)
        with self._lock:
            if self._version == version:
                self._datasets[dataset_id] = dataset
        return dataset

    def decision(
        self, partner_id: str, dataset: DatasetDefinition, at: datetime, version: int
    ) -> Decision:
        key = (partner_id, dataset.id)
        with self._lock:
            self._move_to(version)
            kept = self._decisions.get(key)
        if kept is not None and kept.holds_at(at):
            return kept.decision
        partner = self._governance.partner(partner_id, at)
        caller = Caller(partner.partner_id, partner.region, partner.clearance)
        decision, since, until = self._governance.decide_for_period(caller, dataset, at)
        with self._lock:
            if self._version == version:
                self._decisions[key] = _Kept(decision, since, until)
        return decision

    def kept_dataset(self, dataset_id: str, version: int) -> DatasetDefinition | None:
        """The kept definition, if there is one for ``version``."""
        with self._lock:
            self._move_to(version)
            return self._datasets.get(dataset_id) if version == self._version else None

    def kept(self, partner_id: str, dataset_id: str, at: datetime, version: int) -> Decision | None:
        """The kept decision, if there is one for ``version`` holding at ``at``."""
        with self._lock:
            self._move_to(version)
            if version != self._version or dataset_id not in self._datasets:
                return None
            kept = self._decisions.get((partner_id, dataset_id))
        return kept.decision if kept is not None and kept.holds_at(at) else None

    def _move_to(self, version: int) -> None:
        # A reader with an older version than one already seen must not keep what it read:
        # _version only rises, and entries are stored only under the current one.
        if version > self._version:
            self._version = version
            self._datasets.clear()
            self._decisions.clear()
