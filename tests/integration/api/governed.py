"""Three regions' datasets, three partners in CN, HK and MO under different agreements, and
the grants written out independently of the policy code, for checking what the API returns.

- ``gd-shenzhen.traffic.readings`` (CN): HK's transport department reads it under
  ``sz-hk-traffic`` (rows of gd-shenzhen and hk only, sensor ids pseudonymised, capped at
  internal without personal data); Macao's DSAT under ``sz-mo-traffic`` (one box, times
  coarsened to the hour, capped at public).
- ``hk.traffic.readings`` (HK): Guangzhou's transport bureau reads three fields of a ten-minute
  window under ``hk-gz-traffic``, sensor ids masked; HK's department sees it as its owner.
- ``mo.traffic.readings`` (MO): shared with no one; DSAT sees it as its owner, capped at public.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.agreement import AgreementTerms, RowScope
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.policy import Caller
from domain.provenance import Provenance
from domain.subscription import Channel
from domain.transformation import Transformation, TransformationKind
from domain.whitelist import WhitelistRule
from storage.catalog import Catalog
from storage.governance import Governance
from storage.ingestion import IngestLedger
from storage.object_store import ObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from storage.subscriptions import SubscriptionInfo, Subscriptions
from streams import wire
from streams.processor import IngestProcessor
from tests.integration.api.readings import Reading, as_record, sensor_readings
from tests.support.platform import reading_rows

SZ, HK, MO = "gd-shenzhen.traffic.readings", "hk.traffic.readings", "mo.traffic.readings"
HK_DEPT, MO_DSAT, GZ_BUREAU = "hk-transport-department", "mo-dsat", "gd-guangzhou-transport"
ROWS = 1_200
MESSAGES = 4
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MO_BOX = (113.9, 22.2, 113.93, 22.25)
GZ_WINDOW = (START + timedelta(seconds=200), START + timedelta(seconds=800))
PURPOSE = "traffic-management"


def _dataset(dataset_id: str, owner: str) -> DatasetDefinition:
    return replace(sensor_readings(), id=dataset_id, owner_region=owner)


DATASETS = {d.id: d for d in (_dataset(SZ, "gd-shenzhen"), _dataset(HK, "hk"), _dataset(MO, "mo"))}


@dataclass(frozen=True)
class Grant:
    """What a partner may receive of one dataset, as the agreements and caps say."""

    columns: frozenset[str]
    keeps: Callable[[Reading], bool] = lambda _row: True
    transformed: dict[str, str] = field(default_factory=dict)  # field -> pseudonym/mask/hour


def _in_box(row: Reading) -> bool:
    west, south, east, north = MO_BOX
    return bool(west <= row["lon"] <= east and south <= row["lat"] <= north)


_PUBLIC = frozenset({"sensor_id", "observed_at", "lat", "lon", "speed", "lane_closed"})
GRANTS: dict[tuple[str, str], Grant] = {
    (HK_DEPT, SZ): Grant(
        # volume is internal (within the cap); lane_closed is not in the agreement's fields;
        # operator_id is sensitive and personal.
        frozenset({"sensor_id", "observed_at", "lat", "lon", "speed", "volume"}),
        lambda row: row["region"] in {"gd-shenzhen", "hk"},
        {"sensor_id": "pseudonym"},
    ),
    (HK_DEPT, HK): Grant(_PUBLIC | {"volume"}),  # owner region, clearance internal
    (MO_DSAT, SZ): Grant(_PUBLIC, _in_box, {"observed_at": "hour"}),
    (MO_DSAT, MO): Grant(_PUBLIC),  # owner region, clearance public
    (GZ_BUREAU, HK): Grant(
        frozenset({"sensor_id", "observed_at", "speed"}),
        lambda row: GZ_WINDOW[0] <= row["observed_at"] < GZ_WINDOW[1],
        {"sensor_id": "mask"},
    ),
}
PARTNERS = (HK_DEPT, MO_DSAT, GZ_BUREAU)


@dataclass
class GovernedStore:
    """Stored records by dataset, and each partner's API key."""

    records: dict[str, list[Reading]]
    keys: dict[str, str]
    admin_keys: dict[str, str] = field(default_factory=dict)


def _rules(now: datetime) -> list[WhitelistRule]:
    since = now - timedelta(days=30)
    return [
        WhitelistRule(
            "cn-hk-traffic", "CN", "HK", Classification.INTERNAL, frozenset({PURPOSE}),
            "GBA-SC-2026-0001", since, dataset_kind=DATASETS[SZ].kind,
        ),
        WhitelistRule(
            "cn-mo-traffic", "CN", "MO", Classification.PUBLIC, frozenset({PURPOSE}),
            "GBA-SC-2026-0002", since, dataset_kind=DATASETS[SZ].kind,
        ),
        WhitelistRule(
            "hk-cn-traffic", "HK", "CN", Classification.INTERNAL, frozenset({PURPOSE}),
            "GBA-SC-2026-0003", since, dataset_kind=DATASETS[HK].kind,
        ),
    ]  # fmt: skip


def _agreements(now: datetime) -> list[AgreementTerms]:
    since = now - timedelta(days=1)
    return [
        AgreementTerms(
            agreement_id="sz-hk-traffic",
            provider_region="gd-shenzhen",
            consumer_partner=HK_DEPT,
            datasets=frozenset({SZ}),
            fields={SZ: frozenset({"sensor_id", "observed_at", "lat", "lon", "speed", "volume",
                                   "operator_id"})},
            row_scope=RowScope(regions=frozenset({"gd-shenzhen", "hk"})),
            transformations={SZ: (Transformation(TransformationKind.PSEUDONYMISE, "sensor_id"),)},
            purpose=PURPOSE,
            valid_from=since,
        ),
        AgreementTerms(
            agreement_id="sz-mo-traffic",
            provider_region="gd-shenzhen",
            consumer_partner=MO_DSAT,
            datasets=frozenset({SZ}),
            row_scope=RowScope(bbox=MO_BOX),
            transformations={
                SZ: (Transformation(TransformationKind.COARSEN_TIME, "observed_at",
                                    {"unit": "hour"}),)
            },
            purpose=PURPOSE,
            valid_from=since,
        ),
        AgreementTerms(
            agreement_id="hk-gz-traffic",
            provider_region="hk",
            consumer_partner=GZ_BUREAU,
            datasets=frozenset({HK}),
            fields={HK: frozenset({"sensor_id", "observed_at", "speed"})},
            row_scope=RowScope(start=GZ_WINDOW[0], end=GZ_WINDOW[1]),
            transformations={
                HK: (Transformation(TransformationKind.MASK, "sensor_id", {"keep": 2}),)
            },
            purpose=PURPOSE,
            valid_from=since,
        ),
    ]  # fmt: skip


def govern(event_store_url: str) -> dict[str, str]:
    """Partners, whitelist rules and active agreements; returns each partner's API key."""
    now = datetime.now(UTC)
    governance = Governance(event_store_url)
    try:
        governance.register_partner("hk", "Transport Department", Classification.INTERNAL)
        governance.register_partner("mo", "DSAT", Classification.PUBLIC, partner_id=MO_DSAT)
        governance.register_partner(
            "gd-guangzhou", "Transport", Classification.INTERNAL, ("read", "audit")
        )
        for rule in _rules(now):
            governance.add_rule(rule)
        for terms in _agreements(now):
            provider = terms.provider_region
            governance.propose(terms, provider, DATASETS.__getitem__)
            governance.approve(terms.agreement_id, provider)
            governance.accept(terms.agreement_id, terms.consumer_partner)
            governance.activate(terms.agreement_id, "admin", DATASETS.__getitem__, now)
        return {p: governance.issue_key(p, now - timedelta(seconds=1)).key for p in PARTNERS}
    finally:
        governance.close()


def store_governed(event_store_url: str, store: ObjectStore) -> GovernedStore:
    """The three datasets, half snapshotted and half in the tail, and the governance."""
    catalog, ledger = Catalog(event_store_url), IngestLedger(event_store_url)
    snapshot_ledger = SnapshotLedger(event_store_url)
    records: dict[str, list[Reading]] = {}
    try:
        processor = IngestProcessor(ledger, catalog, clock=lambda: START + timedelta(days=1))
        builder = SnapshotBuilder(snapshot_ledger, catalog, store)
        for dataset in DATASETS.values():
            catalog.register(dataset)
            rows = reading_rows(ROWS, prefix=f"{dataset.owner_region}-", start=START)
            records[dataset.id] = [as_record(dataset, row) for row in rows]
            for message in range(MESSAGES):
                provenance = Provenance(
                    f"file:///{dataset.id}-{message}.csv", START, f"{message:02d}" * 32,
                    "tabular", "1", dataset.owner_region, wire.WIRE_SCHEMA_VERSION,
                )  # fmt: skip
                outcome = processor.process(
                    dataset.ingest_topic,
                    message % dataset.partitions,
                    message // dataset.partitions,
                    wire.encode_rows(rows[message::MESSAGES]),
                    wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None),
                )
                assert outcome.rejected == 0
                if message == MESSAGES // 2 - 1:
                    builder.run_once()
    finally:
        for application in (snapshot_ledger, ledger, catalog):
            application.close()
    return GovernedStore(records, govern(event_store_url))


def expected_ids(
    store: GovernedStore, partner: str, dataset_id: str, params: dict[str, Any]
) -> list[str]:
    """The record ids a records request may return, in page order, before its limit."""
    grant = GRANTS[(partner, dataset_id)]
    rows = [r for r in store.records[dataset_id] if grant.keeps(r)]
    if "region" in params:
        rows = [r for r in rows if r["region"] == params["region"]]
    if "start" in params:
        rows = [r for r in rows if r["observed_at"] >= datetime.fromisoformat(params["start"])]
    if "end" in params:
        rows = [r for r in rows if r["observed_at"] < datetime.fromisoformat(params["end"])]
    if "bbox" in params:
        west, south, east, north = (float(v) for v in params["bbox"].split(","))
        rows = [r for r in rows if west <= r["lon"] <= east and south <= r["lat"] <= north]
    rows.sort(key=lambda r: (r["observed_at"], r["record_id"]))
    return [r["record_id"] for r in rows]


def allow_hk_to_mo(governance: Governance, dataset: DatasetDefinition) -> None:
    """A whitelist rule letting HK share data of the dataset's kind with Macao, up to
    internal, for PURPOSE."""
    governance.add_rule(
        WhitelistRule(
            f"hk-mo-{dataset.kind}", "HK", "MO", Classification.INTERNAL, frozenset({PURPOSE}),
            "GBA-SC-2026-0004", datetime.now(UTC) - timedelta(days=30), dataset_kind=dataset.kind,
        )
    )  # fmt: skip


def share_with_new_partner(
    governance: Governance,
    name: str,
    dataset: DatasetDefinition,
    *transformations: Transformation,
) -> tuple[str, str]:
    """A new Macao partner and an active agreement (``hk-<partner>``, for PURPOSE) on the HK
    dataset with these transformations; returns the partner's id and key."""
    now = datetime.now(UTC)
    partner = governance.register_partner("mo", name, Classification.INTERNAL).partner_id
    terms = AgreementTerms(
        agreement_id=f"hk-{partner}",
        provider_region="hk",
        consumer_partner=partner,
        datasets=frozenset({dataset.id}),
        purpose=PURPOSE,
        valid_from=now - timedelta(days=1),
        transformations={dataset.id: transformations},
    )

    def lookup(dataset_id: str) -> DatasetDefinition:
        assert dataset_id == dataset.id
        return dataset

    governance.propose(terms, "hk", lookup)
    governance.approve(terms.agreement_id, "hk")
    governance.accept(terms.agreement_id, partner)
    governance.activate(terms.agreement_id, "admin", lookup, now)
    return partner, governance.issue_key(partner, now - timedelta(seconds=1)).key


def revoke(event_store_url: str, agreement_id: str, provider: str, reason: str) -> None:
    """Revoke an agreement in the store, as its provider region."""
    governance = Governance(event_store_url)
    try:
        governance.revoke(agreement_id, provider, reason)
    finally:
        governance.close()


def subscribe_sse(event_store_url: str, partner_id: str, dataset_id: str) -> SubscriptionInfo:
    """The partner subscribes to the dataset on the sse channel, under its agreement."""
    governance, subscriptions = Governance(event_store_url), Subscriptions(event_store_url)
    try:
        partner = governance.partner(partner_id)
        caller = Caller(partner.partner_id, partner.region, partner.clearance)
        return subscriptions.subscribe(
            governance, caller, DATASETS[dataset_id], Channel.SSE, partner_id
        )
    finally:
        subscriptions.close()
        governance.close()
