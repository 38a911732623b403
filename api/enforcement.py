"""The sharing policy applied to every /v1 answer, in one place, so routes stay thin.

Each data request asks the policy (domain.policy through Governance) for a decision, applies
it (rows through the grant's scope, columns and transformations through storage.policy_view)
and records it in the access log, denials included. A dataset or record the caller may not
see is answered exactly as one that does not exist: the same error with the same message,
raised here for both, so that no answer tells a partner what exists beyond its grant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from api.auth import AUDIT, Principal
from api.errors import ForbiddenError
from api.grant import Grant
from api.sealed_cursor import CursorSeal
from domain.agreement import RowScope
from domain.dataset import DatasetDefinition
from domain.errors import DatasetNotFoundError
from domain.policy import AgreementView, Caller, Decision, decide
from domain.record import to_micros
from domain.tree_head_log import TreeHeadLog
from storage.access_log import AccessEntry, AccessLog
from storage.coarse_area import in_box, widened
from storage.delivery_log import DeliveryEntry, DeliveryLog
from storage.errors import (
    BadFilterError,
    TreeHeadNotFoundError,
    UnknownDatasetError,
    UnknownRecordError,
)
from storage.evidence_bundle import ExportSummary, export_bundle
from storage.governance import Governance
from storage.policy_view import partner_view, pseudonym_key
from storage.query import (
    MAX_LIMIT,
    SYSTEM_FIELDS,
    AggregateResult,
    BoundingBox,
    DatasetDescription,
    DatasetSummary,
    PublishedSnapshot,
    QueryService,
    RecordPage,
    RecordProvenance,
    SnapshotSummary,
)
from storage.tree_heads import ConsistencyProof, InclusionProof, TreeHeadLedger

_Decider = Callable[[Caller, DatasetDefinition], Decision]
MAX_BOX_ROUNDS = 20
"""Times one page asks the store again for rows whose cell is in a coarsened box."""


_UNIT_MICROS = {"minute": 60_000_000, "hour": 3_600_000_000, "day": 86_400_000_000}


def _on_a_whole(unit: str, moment: datetime) -> bool:
    """Whether ``moment`` falls on a whole minute, hour or day (UTC)."""
    if moment.utcoffset() is None:
        return True  # the query service refuses it, naming the missing offset
    return to_micros(moment) % _UNIT_MICROS[unit] == 0


def unknown_dataset(dataset_id: str) -> UnknownDatasetError:
    """The one answer for a dataset that does not exist or that the caller may not see."""
    return UnknownDatasetError(f"no dataset {dataset_id!r} is registered")


def unknown_record(record_id: str) -> UnknownRecordError:
    """The one answer for a record that does not exist or that the caller may not read."""
    return UnknownRecordError(f"no stored batch holds record {record_id!r}")


@dataclass(frozen=True)
class DatasetAccess:
    """A partner that can see a dataset, and on what grounds (agreement or owner region)."""

    partner_id: str
    reason: str
    agreement_id: str | None


@dataclass
class _Outcome:
    rows: int = 0
    decision: Decision | None = None
    dataset_id: str | None = None
    reason: str | None = None
    allowed: bool | None = None


class PolicyService:
    """Reads through the query service as one principal is allowed to, logging each access."""

    def __init__(
        self,
        principal: Principal,
        query: Callable[[], QueryService],
        governance: Callable[[], Governance],
        access_log: Callable[[], AccessLog],
        pseudonym_secret: bytes,
        seal: CursorSeal,
    ) -> None:
        # The stores are opened on first use: a request refused before then opens nothing.
        self.principal = principal
        self._query, self._governance, self._access_log = query, governance, access_log
        self._key = pseudonym_key(pseudonym_secret, principal.name)
        self._seal = seal

    @property
    def query(self) -> QueryService:
        return self._query()

    @property
    def governance(self) -> Governance:
        return self._governance()

    @property
    def access_log(self) -> AccessLog:
        return self._access_log()

    # Catalog ------------------------------------------------------------------------------

    def datasets(self) -> list[tuple[DatasetSummary, list[DatasetAccess] | Grant]]:
        """The datasets the caller may see: for the administrator every dataset, each with
        the partners that can see it and under which agreement; for a partner each with its
        grant (what it receives, under which agreement, for what purpose)."""
        with self._logged("datasets") as outcome:
            summaries = self.query.list_datasets()
            now = datetime.now(UTC)
            found: list[tuple[DatasetSummary, list[DatasetAccess] | Grant]] = []
            if self.principal.admin:
                found = [(s, self._audience(s.definition, now)) for s in summaries]
            else:
                decided = self._decider(now)
                purposes = self._purposes()
                for summary in summaries:
                    decision = decided(self.principal.caller, summary.definition)
                    if decision.allowed:
                        purpose = purposes.get(decision.agreement_id or "")
                        found.append((summary, Grant(summary.definition, decision, purpose)))
            outcome.rows, outcome.allowed, outcome.reason = len(found), True, "catalog"
            return found

    def dataset(self, dataset_id: str) -> tuple[DatasetDescription, Grant]:
        with self._logged("dataset") as outcome:
            grant = self._grant(dataset_id, outcome)
            agreement_id = grant.decision.agreement_id
            if agreement_id is not None and not self.principal.admin:
                grant = replace(grant, purpose=self._purposes().get(agreement_id))
            return self.query.dataset(dataset_id), grant

    # Records -------------------------------------------------------------------------------

    def records(
        self,
        dataset_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        region: str | None,
        bbox: BoundingBox | None,
        fields: Sequence[str] | None,
        limit: int,
        cursor: str | None,
    ) -> RecordPage:
        with self._logged("records") as outcome:
            grant = self._grant(dataset_id, outcome)
            if grant.summarised and not self.principal.admin:
                asked = {"start": start, "end": end, "region": region, "bbox": bbox}
                page = self._summaries(grant, {**asked, "cursor": cursor})
                outcome.rows = page.table.num_rows
                return page
            self._check_filters(grant, start, end, bbox)
            if fields is not None:
                self._check_fields(grant, fields)
            transformed = bool(grant.decision.transformations)
            if cursor is not None and not self.principal.admin:
                cursor = self._seal.open(cursor)
            coarse_box = None
            if bbox is not None and grant.coarsening is not None and not self.principal.admin:
                coarse_box, bbox = bbox, widened(bbox, grant.coarsening)
            table, next_cursor, position = self._page(
                grant,
                coarse_box,
                start=start,
                end=end,
                region=region,
                bbox=bbox,
                fields=None if transformed else fields,
                limit=limit,
                cursor=cursor,
            )
            if fields is not None and transformed and not self.principal.admin:
                wanted = dict.fromkeys(["record_id", *fields])
                table = table.select([c for c in wanted if c in table.column_names])
            outcome.rows = table.num_rows
            if next_cursor is not None and not self.principal.admin:
                next_cursor = self._seal.seal(next_cursor)
            return RecordPage(table, next_cursor, position)

    def _page(
        self,
        grant: Grant,
        coarse_box: BoundingBox | None,
        *,
        limit: int,
        cursor: str | None,
        **filters: Any,
    ) -> tuple[pa.Table, str | None, int]:
        """One page as the caller sees it. With ``coarse_box`` the store was asked for a
        wider box and rows are kept where their coarsened location is in ``coarse_box``; the
        store is asked again, for as many rows as are missing, until the page is full, the
        rows end or MAX_BOX_ROUNDS pass (a short page then still has its cursor)."""
        parts: list[pa.Table] = []
        position: int | None = None
        for _round in range(MAX_BOX_ROUNDS):
            page = self.query.records(
                grant.dataset.id,
                limit=limit - sum(p.num_rows for p in parts),
                cursor=cursor,
                scope=self._scope(grant),
                **filters,
            )
            position = page.current_to_position if position is None else position
            table = page.table
            if not self.principal.admin:
                table = partner_view(table, grant.dataset, grant.decision, self._key)
            if coarse_box is not None:
                table = table.filter(in_box(table, grant.dataset, coarse_box))
            parts.append(table)
            cursor = page.next_cursor
            if coarse_box is None or cursor is None or sum(p.num_rows for p in parts) >= limit:
                break
        assert position is not None
        return pa.concat_tables(parts), cursor, position

    def aggregate(
        self,
        dataset_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        region: str | None,
        bbox: BoundingBox | None,
        group_by: Sequence[str],
        metrics: Sequence[str],
    ) -> AggregateResult:
        with self._logged("aggregate") as outcome:
            grant = self._grant(dataset_id, outcome)
            if not self.principal.admin:
                if grant.summarised:
                    raise BadFilterError(
                        "metric",
                        f"{dataset_id!r} is shared with you only as the summaries your "
                        "agreement sets; read them from its records",
                    )
                self._check_filters(grant, start, end, bbox)
                if bbox is not None and grant.coarsening is not None:
                    # Aggregates are computed over the stored locations, not the cells.
                    raise BadFilterError(
                        "bbox",
                        "your agreement coarsens this dataset's location, so its aggregates "
                        "have no box filter; filter its records by box instead",
                    )
                plain = grant.plain_fields | {"region"}
                for key in group_by:
                    if key not in plain:
                        raise BadFilterError(
                            "group_by", f"cannot group by {key!r}: not a groupable field"
                        )
                for metric in metrics:
                    name = metric.partition(":")[2]
                    if name and name not in plain:
                        raise BadFilterError(
                            "metrics", f"{name!r} is not a numeric field of {dataset_id!r}"
                        )
            result = self.query.aggregate(
                dataset_id,
                start=start,
                end=end,
                region=region,
                bbox=bbox,
                group_by=group_by,
                metrics=metrics,
                scope=self._scope(grant),
            )
            outcome.rows = result.table.num_rows
            return result

    def _summaries(self, grant: Grant, asked: dict[str, object]) -> RecordPage:
        """Every row the grant reaches, summarised at once. Filters, pages and limits are
        refused or ignored: two summaries that differ by a few rows would give those rows
        away, so there is only the one summary."""
        for parameter, value in asked.items():
            if value is not None:
                raise BadFilterError(
                    parameter,
                    f"{grant.dataset.id!r} is shared with you only as summaries of every row "
                    f"your agreement reaches, so {parameter} cannot be used",
                )
        parts: list[pa.Table] = []
        cursor: str | None = None
        while True:
            page = self.query.records(
                grant.dataset.id, limit=MAX_LIMIT, cursor=cursor, scope=self._scope(grant)
            )
            parts.append(page.table)
            cursor = page.next_cursor
            if cursor is None:
                break
        rows = pa.concat_tables(parts)
        summary = partner_view(rows, grant.dataset, grant.decision, self._key)
        return RecordPage(summary, None, page.current_to_position)

    # Snapshots ----------------------------------------------------------------------------

    def snapshots(self, dataset_id: str) -> tuple[list[SnapshotSummary], Grant]:
        with self._logged("snapshots") as outcome:
            grant = self._grant(dataset_id, outcome)
            found = self.query.snapshots(dataset_id)
            outcome.rows = len(found)
            return found, grant

    def snapshot(self, dataset_id: str, snapshot_id: str) -> tuple[PublishedSnapshot, Grant]:
        """The snapshot and the grant: the route gives file URLs only where the grant covers
        the whole file (see Grant.whole and Grant.reaches_region)."""
        with self._logged("snapshot") as outcome:
            grant = self._grant(dataset_id, outcome)
            found = self.query.snapshot(dataset_id, snapshot_id)
            outcome.rows = sum(
                f.rows for f in found.manifest.files if grant.reaches_region(f.region)
            )
            return found, grant

    # Provenance ----------------------------------------------------------------------------

    def provenance(self, record_id: str) -> RecordProvenance:
        with self._logged("provenance") as outcome:
            try:
                found = self.query.provenance(record_id)
            except UnknownRecordError:
                outcome.reason, outcome.allowed = "unknown-record", False
                raise unknown_record(record_id) from None
            try:
                grant = self._grant(found.dataset_id, outcome)
            except UnknownDatasetError:
                raise unknown_record(record_id) from None
            if not self.principal.admin and grant.limits_rows:
                try:
                    found = self.query.provenance(record_id, grant.decision.row_scope)
                except UnknownRecordError:
                    outcome.reason, outcome.allowed = "outside-row-scope", False
                    raise unknown_record(record_id) from None
            outcome.rows = 1
            return found

    # Access log ------------------------------------------------------------------------------

    def access_entries(
        self, after: int, limit: int, partner_id: str | None, dataset_id: str | None
    ) -> list[AccessEntry]:
        """The administrator reads every entry; a partner with the audit scope reads its own
        and those about its region's datasets."""
        with self._logged("access-log") as outcome:
            where = self._audited(outcome, "the access log")
            found = self.access_log.entries(after, limit, partner_id, dataset_id, where)
            outcome.rows, outcome.allowed, outcome.reason = len(found), True, "audit"
            return found

    def delivery_entries(
        self,
        log: DeliveryLog,
        after: int,
        limit: int,
        partner_id: str | None,
        dataset_id: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> list[DeliveryEntry]:
        """What partners were delivered, read as the access log is: every entry for the
        administrator, a partner's own and its region's datasets' for the audit scope."""
        with self._logged("deliveries") as outcome:
            where = self._audited(outcome, "the delivery log")
            found = log.entries(partner_id, dataset_id, start, end, after, limit, where)
            outcome.rows, outcome.allowed, outcome.reason = len(found), True, "audit"
            return found

    # The Merkle log ---------------------------------------------------------------------------
    # Heads and proofs say nothing of any record's content (a leaf is an event's position,
    # topic, originator and state digest), so every auditor reads all of them.

    def tree_heads(self, ledger: TreeHeadLedger, limit: int) -> list[TreeHeadLog.Recorded]:
        with self._logged("audit-tree-heads") as outcome:
            self._auditor(outcome, "the Merkle log")
            heads = ledger.heads(limit=limit, desc=True)
            outcome.rows, outcome.allowed, outcome.reason = len(heads), True, "audit"
            return heads

    def latest_tree_head(self, ledger: TreeHeadLedger) -> TreeHeadLog.Recorded:
        with self._logged("audit-tree-heads") as outcome:
            self._auditor(outcome, "the Merkle log")
            head = ledger.latest()
            if head is None:
                raise TreeHeadNotFoundError("no signed tree head is recorded yet")
            outcome.rows, outcome.allowed, outcome.reason = 1, True, "audit"
            return head

    def inclusion_proof(
        self, ledger: TreeHeadLedger, position: int, tree_size: int
    ) -> InclusionProof:
        with self._logged("audit-inclusion-proof") as outcome:
            self._auditor(outcome, "the Merkle log")
            proof = ledger.inclusion(position, tree_size)
            outcome.rows, outcome.allowed, outcome.reason = 1, True, "audit"
            return proof

    def consistency_proof(
        self, ledger: TreeHeadLedger, first: int, second: int
    ) -> ConsistencyProof:
        with self._logged("audit-consistency-proof") as outcome:
            self._auditor(outcome, "the Merkle log")
            proof = ledger.consistency(first, second)
            outcome.rows, outcome.allowed, outcome.reason = 1, True, "audit"
            return proof

    def evidence_bundle(
        self, ledger: TreeHeadLedger, start: int, end: int, out: Path, max_events: int
    ) -> ExportSummary:
        """An evidence bundle of the range, without the node's key: the API holds none, and
        the auditor verifies under the key they hold anyway (ADR 21)."""
        with self._logged("audit-bundle") as outcome:
            self._auditor(outcome, "the Merkle log")
            summary = export_bundle(
                ledger, self.query.object_store, None, start, end, out, max_events=max_events
            )
            outcome.rows, outcome.allowed, outcome.reason = summary.events, True, "audit"
            return summary

    def _auditor(self, outcome: _Outcome, what: str) -> None:
        if not self.principal.admin and AUDIT not in self.principal.scopes:
            outcome.reason, outcome.allowed = "no-audit-scope", False
            raise ForbiddenError(f"reading {what} needs the admin or audit scope")

    def _audited(
        self, outcome: _Outcome, what: str
    ) -> Callable[[AccessEntry | DeliveryEntry], bool] | None:
        """Which log entries the principal may read: None for all (the administrator)."""
        self._auditor(outcome, what)
        if self.principal.admin:
            return None
        me, region = self.principal.caller.partner_id, self.principal.caller.region
        owned = {
            d.definition.id
            for d in self.query.list_datasets()
            if d.definition.owner_region == region
        }

        def where(entry: AccessEntry | DeliveryEntry) -> bool:
            return entry.partner_id == me or entry.dataset_id in owned

        return where

    # Internals -----------------------------------------------------------------------------

    def _grant(self, dataset_id: str, outcome: _Outcome) -> Grant:
        outcome.dataset_id = dataset_id
        try:
            dataset = self.query.catalog.get(dataset_id, self.query.regions)
        except DatasetNotFoundError:
            outcome.reason, outcome.allowed = "unknown-dataset", False
            raise unknown_dataset(dataset_id) from None
        decision = self.governance.decide(self.principal.caller, dataset)
        outcome.decision = decision
        if not decision.allowed:
            raise unknown_dataset(dataset_id)
        return Grant(dataset, decision)

    def _scope(self, grant: Grant) -> RowScope | None:
        return None if self.principal.admin else grant.decision.row_scope

    def _check_fields(self, grant: Grant, fields: Sequence[str]) -> None:
        if self.principal.admin:
            return  # the query service names unknown fields itself
        known = [*SYSTEM_FIELDS, *grant.fields]
        for name in fields:
            if name not in known:
                raise BadFilterError(
                    "fields",
                    f"dataset {grant.dataset.id!r} has no field {name!r}; its fields are "
                    + ", ".join(known),
                )

    def _check_filters(
        self,
        grant: Grant,
        start: datetime | None,
        end: datetime | None,
        bbox: BoundingBox | None,
    ) -> None:
        if self.principal.admin:
            return
        if bbox is not None and grant.withholds_location:
            raise BadFilterError(
                "bbox",
                "your agreement does not share this dataset's location, so it has no box filter",
            )
        unit = grant.time_unit
        if unit is None:
            return
        for parameter, moment in (("start", start), ("end", end)):
            # A bound on a whole unit splits raw and coarsened times alike, so it tells no
            # more than the coarsened times do (the export paths of snapshot files are days).
            if moment is not None and not _on_a_whole(unit, moment):
                raise BadFilterError(
                    parameter,
                    f"your agreement coarsens this dataset's time to the {unit}, so start and "
                    f"end must fall on a whole {unit} (UTC)",
                )

    def _purposes(self) -> dict[str, str]:
        """The purpose of each of the caller's agreements, by agreement id."""
        return {
            info.terms.agreement_id: info.terms.purpose
            for info in self.governance.agreements(self.principal.caller.partner_id)
        }

    def _decider(self, at: datetime) -> _Decider:
        governance = self.governance
        agreements = governance.agreements()
        whitelist = governance.whitelist()

        def decided(caller: Caller, dataset: DatasetDefinition) -> Decision:
            views = [
                AgreementView(a.terms, a.state)
                for a in agreements
                if a.terms.consumer_partner == caller.partner_id
            ]
            return decide(caller, dataset, views, whitelist, governance.regions, at)

        return decided

    def _audience(self, dataset: DatasetDefinition, at: datetime) -> list[DatasetAccess]:
        decided = self._decider(at)
        audience = []
        for partner in self.governance.partners():
            decision = decided(
                Caller(partner.partner_id, partner.region, partner.clearance), dataset
            )
            if decision.allowed:
                audience.append(
                    DatasetAccess(partner.partner_id, decision.reason.value, decision.agreement_id)
                )
        return audience

    @contextmanager
    def _logged(self, action: str) -> Iterator[_Outcome]:
        """Records the access when the answer is ready, or failed (then with 0 rows)."""
        outcome = _Outcome()
        try:
            yield outcome
        except Exception as error:
            outcome.rows = 0
            if outcome.decision is not None and outcome.decision.allowed:
                outcome.reason = f"{outcome.decision.reason.value}; refused: {type(error).__name__}"
            raise
        finally:
            self.access_log.record(
                self.principal.caller,
                action,
                outcome.decision,
                rows=outcome.rows,
                reason=outcome.reason,
                dataset_id=outcome.dataset_id,
                allowed=outcome.allowed,
            )
