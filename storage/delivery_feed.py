"""What a subscription receives: its dataset's accepted records after a log position, as the
policy lets the partner see them now, as CloudEvents 1.0.

Both delivery points read here: the relay (Kafka topics, webhooks) and the API (server-sent
events, WebSocket). Each event carries its notification-log position, so a consumer resumes
exactly after the last one it saw and recognises a redelivered record by its id.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from domain.dataset import DatasetDefinition
from domain.ingest import IngestChain
from domain.policy import Decision, DecisionReason
from domain.transformation import TransformationKind
from storage.catalog import Catalog
from storage.decision_cache import DecisionCache
from storage.delivery_tail import LogTail, TailState
from storage.governance import Governance
from storage.parquet_snapshot import records_table
from storage.policy_view import partner_view, pseudonym_key
from storage.query import rows_in_scope
from storage.record_json import json_records
from storage.snapshots import SnapshotLedger
from storage.subscriptions import SubscriptionInfo

EVENT_TYPE = "org.baylink.record.v1"
_POSITION = "__position"
AGGREGATED_GRANT = (
    "the agreement grants only aggregates of this dataset, which are queried, not streamed"
)
_JSON = JSONFormat()
# Events of partner views kept for other subscriptions reading the same positions (a few KB
# each): enough for readers a few batches apart.
_VIEW_CACHE_EVENTS = 20_000


@dataclass(frozen=True, slots=True)
class Delivered:
    """One record as delivered: its log position, id and CloudEvent."""

    position: int
    record_id: str
    event: CloudEvent
    body: bytes  # its structured-mode CloudEvents JSON, made once
    # "P:k": the k-th record of position P in the partner's view (stable for one grant), the
    # id a stream's client resumes from.
    event_id: str = ""
    # Encodings a delivery point made of it, by name: one Delivered is shared by every
    # subscription reading the position under the same grant, so each is made once.
    rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def json(self) -> bytes:
        """The structured-mode CloudEvents JSON of the event."""
        return self.body


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Records after a position, up to ``through``: the next page starts after ``through``.

    ``stopped`` says why nothing was read (the policy no longer grants the subscription);
    ``through`` then stays where it was, so nothing is skipped while delivery is stopped.
    """

    delivered: list[Delivered]
    through: int
    decision: Decision
    stopped: str | None = None


def provenance_digest(provenance: dict[str, Any]) -> str:
    """sha256 of the provenance as canonical JSON, so a partner can cite it without it."""
    text = json.dumps(provenance, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class DeliveryFeed:
    """Reads subscriptions' records from the shared store and applies the policy to them."""

    def __init__(self, event_store_url: str, pseudonym_secret: bytes) -> None:
        self.ledger = SnapshotLedger(event_store_url)
        self.catalog = Catalog(event_store_url)
        self.governance = Governance(event_store_url)
        self.tail = LogTail(self.ledger)
        self._kept = DecisionCache(self.catalog, self.governance)
        self._secret = pseudonym_secret
        self._views: OrderedDict[tuple[Hashable, int], list[Delivered]] = OrderedDict()
        self._cached_events = 0
        self._lock = threading.Lock()
        self._making: dict[tuple[Hashable, int], threading.Event] = {}  # views being made

    def close(self) -> None:
        self.ledger.close()
        self.catalog.close()
        self.governance.close()

    def head(self) -> int:
        """The newest log position (read through the shared tail, which follows it)."""
        return self.tail.catch_up().position

    def page(
        self,
        subscription: SubscriptionInfo,
        after: int,
        max_positions: int = 10_000,
        at: datetime | None = None,
        tail: TailState | None = None,
    ) -> FeedPage:
        """The subscription's records in (after, after + max_positions], as granted at ``at``.

        ``tail``: a state of the tail read after this call was asked for (the caller caught
        up already); by default the tail catches up first."""
        # The tail first: the decision is then at least as new as every record read.
        tail = tail or self.tail.catch_up()
        page = self._page(subscription, after, max_positions, at or datetime.now(UTC), tail)
        assert page is not None
        return page

    def kept_page(
        self, subscription: SubscriptionInfo, after: int, max_positions: int, tail: TailState
    ) -> FeedPage | None:
        """``page`` as of ``tail`` if everything it needs is kept already (the definition, the
        decision, the batches and their views): it reads no store, so an event loop may call
        it. Otherwise None."""
        return self._page(
            subscription, after, max_positions, datetime.now(UTC), tail, kept_only=True
        )

    def _page(
        self,
        subscription: SubscriptionInfo,
        after: int,
        max_positions: int,
        at: datetime,
        tail: TailState,
        *,
        kept_only: bool = False,
    ) -> FeedPage | None:
        terms = subscription.terms
        version = tail.policy_version
        if kept_only:
            dataset = self._kept.kept_dataset(terms.dataset_id, version)
            if dataset is None:
                return None
            kept = self._kept.kept(terms.partner_id, terms.dataset_id, at, version)
            if kept is None:
                return None
            decision = kept
        else:
            dataset = self._kept.dataset(terms.dataset_id, version)
            decision = self._kept.decision(terms.partner_id, dataset, at, version)
        after = max(after, terms.start_position - 1)
        if not decision.allowed or decision.agreement_id != terms.agreement_id:
            return FeedPage([], after, decision, _why_stopped(terms.agreement_id, decision))
        if any(t.kind is TransformationKind.AGGREGATE for t in decision.transformations):
            # Windows with a minimum count per group cannot be told apart record by record.
            return FeedPage([], after, decision, AGGREGATED_GRANT)
        last = min(tail.position, after + max_positions)
        if last <= after:
            return FeedPage([], after, decision)
        if kept_only:
            delivered = self._kept_views(terms.partner_id, dataset, decision, after, last)
            return None if delivered is None else FeedPage(delivered, last, decision)
        return FeedPage(
            self._delivered(terms.partner_id, dataset, decision, after, last), last, decision
        )

    def _kept_views(
        self,
        partner_id: str,
        dataset: DatasetDefinition,
        decision: Decision,
        after: int,
        last: int,
    ) -> list[Delivered] | None:
        batches = self.tail.kept_batches(dataset.id, after + 1, last)
        if batches is None:
            return None
        grant = (partner_id, dataset.id, _grant_key(decision))
        delivered: list[Delivered] = []
        with self._lock:
            for position, _ in batches:
                view = self._views.get((grant, position))
                if view is None:
                    return None
                delivered.extend(view)
        return delivered

    def decision(
        self,
        subscription: SubscriptionInfo,
        dataset: DatasetDefinition,
        at: datetime,
        tail: TailState | None = None,
    ) -> Decision:
        """The partner's decision now: kept ones are used only once the tail has read every
        change recorded before this call (``tail`` as for ``page``)."""
        version = (tail or self.tail.catch_up()).policy_version
        return self._kept.decision(subscription.terms.partner_id, dataset, at, version)

    def dataset(self, dataset_id: str, tail: TailState | None = None) -> DatasetDefinition:
        """The dataset's definition now (kept like decisions)."""
        return self._kept.dataset(dataset_id, (tail or self.tail.catch_up()).policy_version)

    def kept_decision(
        self, subscription: SubscriptionInfo, at: datetime, tail: TailState
    ) -> Decision | None:
        """The decision ``decision`` would give, if it is kept (no store access); else None."""
        terms = subscription.terms
        return self._kept.kept(terms.partner_id, terms.dataset_id, at, tail.policy_version)

    def _delivered(
        self,
        partner_id: str,
        dataset: DatasetDefinition,
        decision: Decision,
        after: int,
        last: int,
    ) -> list[Delivered]:
        """The partner's view of the dataset's records in (after, last], position by position;
        a position's view is made once per grant and shared by every subscription reading it
        under the same decision (many consumers of one partner read the same records)."""
        grant = (partner_id, dataset.id, _grant_key(decision))
        batches = list(self.tail.batches_between(dataset.id, after + 1, last))
        # Streams woken by the same batch ask for its view together: one makes it while the
        # others wait for that position only, then they share it. A reader far behind makes
        # its own old positions without holding up those reading new ones.
        mine, theirs = self._claim(grant, batches)
        if mine:
            try:
                made = self._views_of(partner_id, dataset, decision, mine)
                with self._lock:
                    for position, view in made.items():
                        self._views[(grant, position)] = view
                        self._cached_events += len(view)
                    while self._cached_events > _VIEW_CACHE_EVENTS and len(self._views) > 1:
                        self._cached_events -= len(self._views.popitem(last=False)[1])
            finally:
                with self._lock:
                    for position, _ in mine:
                        self._making.pop((grant, position)).set()
        for made_elsewhere in theirs:
            made_elsewhere.wait()
        delivered: list[Delivered] = []
        for position, batch in batches:
            with self._lock:
                cached = self._views.get((grant, position))
            if cached is None:  # evicted meanwhile by other readers: made again, not kept
                cached = self._views_of(partner_id, dataset, decision, [(position, batch)])[
                    position
                ]
            delivered.extend(cached)
        return delivered

    def _claim(
        self, grant: Hashable, batches: list[tuple[int, IngestChain.BatchRecorded]]
    ) -> tuple[list[tuple[int, IngestChain.BatchRecorded]], list[threading.Event]]:
        """The positions without a view that this reader is to make, and the events of those
        another reader is making."""
        mine: list[tuple[int, IngestChain.BatchRecorded]] = []
        theirs: list[threading.Event] = []
        with self._lock:
            for position, batch in batches:
                key = (grant, position)
                if key in self._views:
                    continue
                making = self._making.get(key)
                if making is None:
                    self._making[key] = threading.Event()
                    mine.append((position, batch))
                else:
                    theirs.append(making)
        return mine, theirs

    def _views_of(
        self,
        partner_id: str,
        dataset: DatasetDefinition,
        decision: Decision,
        batches: list[tuple[int, IngestChain.BatchRecorded]],
    ) -> dict[int, list[Delivered]]:
        records: list[list[object]] = []
        positions: list[int] = []
        digests: dict[int, str] = {}
        for position, batch in batches:
            accepted = batch.accepted()
            records.extend(accepted)
            positions.extend([position] * len(accepted))
            digests[position] = provenance_digest(dict(batch.provenance))
        table = records_table(dataset, records)
        table = table.append_column(_POSITION, pa.array(positions, pa.int64()))
        if table.num_rows:
            table = rows_in_scope(dataset, table, decision.row_scope)
        kept = table[_POSITION].to_pylist() if table.num_rows else []
        view = partner_view(
            table.drop_columns([_POSITION]),
            dataset,
            decision,
            pseudonym_key(self._secret, partner_id),
        )
        made: dict[int, list[Delivered]] = {position: [] for position, _ in batches}
        for position, row in zip(kept, json_records(view), strict=True):
            event = _event(dataset, decision, row, position, digests[position])
            into = made[position]
            into.append(
                Delivered(
                    position,
                    str(row["record_id"]),
                    event,
                    _JSON.write(event),
                    f"{position}:{len(into) + 1}",
                )
            )
        return made


def _grant_key(decision: Decision) -> Hashable:
    """What a partner's view of a record depends on, besides the partner and the dataset."""
    return repr(
        (
            decision.agreement_id,
            decision.whitelist_version,
            decision.columns,
            decision.row_scope,
            decision.transformations,
        )
    )


def _why_stopped(agreement_id: str, decision: Decision) -> str:
    if decision.allowed and decision.reason is DecisionReason.AGREEMENT:
        return (
            f"agreement {agreement_id!r} no longer grants the dataset "
            f"(it is now granted under {decision.agreement_id!r})"
        )
    if decision.allowed:
        return f"the dataset is no longer granted under agreement {agreement_id!r}"
    return decision.message


def _event(
    dataset: DatasetDefinition,
    decision: Decision,
    row: dict[str, object],
    position: int,
    provenance: str,
) -> CloudEvent:
    attributes: dict[str, Any] = {
        "id": str(row["record_id"]),
        "source": f"/baylink/datasets/{dataset.id}",
        "type": EVENT_TYPE,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": str(row["record_id"]),
        "dataset": dataset.id,
        "region": str(row.get("region") or dataset.owner_region),
        "recordid": str(row["record_id"]),
        "agreementid": decision.agreement_id or "",
        "whitelistversion": decision.whitelist_version,
        "provenancedigest": provenance,
        "position": position,
    }
    moment = row.get(dataset.time_field)
    if isinstance(moment, datetime):
        attributes["time"] = moment
    return CloudEvent(attributes, _jsonable(row))


def _jsonable(row: dict[str, object]) -> dict[str, Any]:
    jsonable: dict[str, Any] = json.loads(json.dumps(row, default=_default))
    return jsonable


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot deliver a {type(value).__name__} value as JSON")
