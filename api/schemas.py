"""What the API answers with: response models, built from storage's plain query results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.dataset import DatasetDefinition, FieldSpec
from storage.query import (
    DatasetDescription,
    DatasetSummary,
    Freshness,
    PublishedSnapshot,
    RecordProvenance,
    SnapshotSummary,
)


class ProblemItem(BaseModel):
    """One thing wrong with a request."""

    parameter: str = Field(description="Name of the parameter at fault, e.g. `limit`.")
    location: str = Field(description="Where the parameter is: path, query, header or body.")
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (served as application/problem+json)."""

    type: str = Field(description="URI naming the kind of problem, e.g. urn:baylink:problem:…")
    title: str
    status: int
    detail: str = Field(description="What was wrong, naming the parameter at fault.")
    instance: str | None = Field(default=None, description="The request path.")
    parameter: str | None = Field(default=None, description="The request parameter at fault.")
    errors: list[ProblemItem] | None = None


class FieldModel(BaseModel):
    """One field of a dataset's records."""

    name: str
    type: str = Field(description="string, int64, float64, bool or timestamp")
    classification: str
    unit: str | None = None
    personal: bool = False
    required: bool = False
    min: float | None = None
    max: float | None = None
    description: str = ""

    @classmethod
    def of(cls, spec: FieldSpec) -> FieldModel:
        return cls(
            name=spec.name,
            type=spec.type.value,
            classification=spec.classification.label,
            unit=spec.unit,
            personal=spec.personal,
            required=spec.required,
            min=spec.minimum,
            max=spec.maximum,
            description=spec.description,
        )


class ColumnModel(BaseModel):
    """One column of the records the API and the snapshots' Parquet files hold."""

    name: str
    type: str = Field(description="Arrow type, e.g. timestamp[us, tz=UTC]")
    nullable: bool


class GeometryModel(BaseModel):
    """The fields that locate a record (WGS-84 once stored): two coordinate fields (lat, lon)
    or one geometry field (field), and the CRS sources give them in."""

    lat: str | None = None
    lon: str | None = None
    field: str | None = None
    crs: str


class SnapshotRef(BaseModel):
    """A published snapshot: the log range it covers and where its manifest is described."""

    snapshot_id: str
    first_position: int
    last_position: int
    row_count: int | None = Field(description="Null where your grant limits rows by box or time.")
    published_at: datetime
    manifest_sha256: str
    href: str = Field(description="Path of the snapshot's manifest in this API.")

    @classmethod
    def of(cls, dataset_id: str, summary: SnapshotSummary) -> SnapshotRef:
        return cls(
            snapshot_id=summary.snapshot_id,
            first_position=summary.first_position,
            last_position=summary.last_position,
            row_count=summary.row_count,
            published_at=summary.published_at,
            manifest_sha256=summary.manifest_sha256,
            href=f"/v1/snapshots/{dataset_id}/{summary.snapshot_id}",
        )


class FreshnessModel(BaseModel):
    """How current the data is: the store's newest log position, and how far and when the
    newest snapshot reached. Records after the snapshot are served from the log's tail."""

    store_position: int
    snapshot_position: int | None
    snapshot_published_at: datetime | None

    @classmethod
    def of(cls, freshness: Freshness) -> FreshnessModel:
        return cls(
            store_position=freshness.store_position,
            snapshot_position=freshness.snapshot_position,
            snapshot_published_at=freshness.snapshot_published_at,
        )


class DatasetAccessModel(BaseModel):
    """A partner that can see a dataset: as a partner of its owner region, or under an
    agreement."""

    partner_id: str
    reason: str = Field(description="owner-region or agreement")
    agreement_id: str | None = None


class PartnerGrantModel(BaseModel):
    """What the calling partner receives of a dataset, and why."""

    reason: str = Field(description="owner-region (a partner of the owner region) or agreement")
    agreement_id: str | None = Field(
        default=None,
        description="The agreement the access rests on (of several, the one granting the "
        "most fields, then the lowest id); null for a partner of the owner region.",
    )
    purpose: str | None = Field(
        default=None, description="The agreement's purpose; null for the owner region."
    )
    classification: str = Field(
        description="The most protected level among the fields you receive (the dataset's "
        "own `classification` is the most protected of all its fields)."
    )
    fields: list[str] = Field(
        description="The fields your grant reaches (an H3 coarsening adds `h3_cell`; a "
        "summarising grant sends only its groups and measures of them)."
    )
    transformations: list[dict[str, Any]] = Field(
        description="Applied to every answer you receive, in the agreement's terms: e.g. "
        '{"kind": "coarsen_location", "h3_resolution": 7} or {"kind": "pseudonymise", '
        '"field": "sensor_id"}.'
    )
    row_scope: dict[str, Any] = Field(
        description="The rows you reach: regions, box (min_lon, min_lat, max_lon, max_lat) "
        "and time window; null where unlimited."
    )


class DatasetSummaryModel(BaseModel):
    """A registered dataset, as the catalog lists it."""

    id: str
    kind: str
    version: int
    owner_region: str
    title: dict[str, str] = Field(description="Title by language tag (en, zh-Hant, zh-Hans).")
    classification: str = Field(description="The most protected of its fields' levels.")
    latest_snapshot: SnapshotRef | None
    access: list[DatasetAccessModel] | None = Field(
        default=None,
        description="Shown to the administrator only: the partners that can see the dataset.",
    )
    grant: PartnerGrantModel | None = Field(
        default=None,
        description="Shown to a partner only: what it receives of the dataset, under which "
        "agreement and for what purpose.",
    )

    @classmethod
    def of(cls, summary: DatasetSummary) -> DatasetSummaryModel:
        return cls(**_identity(summary.definition), latest_snapshot=_ref(summary))


class DatasetList(BaseModel):
    """Every registered dataset, ordered by id."""

    datasets: list[DatasetSummaryModel]


class DatasetDetail(DatasetSummaryModel):
    """A dataset's definition, record columns, snapshots and freshness."""

    description: str
    time_field: str
    key_fields: list[str]
    geometry: GeometryModel | None
    fields: list[FieldModel]
    columns: list[ColumnModel]
    snapshot_count: int
    freshness: FreshnessModel

    @classmethod
    def of_description(cls, found: DatasetDescription) -> DatasetDetail:
        definition = found.definition
        geometry = definition.geometry
        feature = definition.feature_geometry
        latest = found.latest_snapshot
        return cls(
            **_identity(definition),
            latest_snapshot=SnapshotRef.of(definition.id, latest) if latest else None,
            description=definition.description,
            time_field=definition.time_field,
            key_fields=list(definition.key_fields),
            geometry=(
                GeometryModel(lat=geometry.lat, lon=geometry.lon, crs=geometry.crs)
                if geometry
                else GeometryModel(field=feature.field, crs=feature.crs)
                if feature
                else None
            ),
            fields=[FieldModel.of(spec) for spec in definition.fields],
            columns=[
                ColumnModel(name=f.name, type=str(f.type), nullable=f.nullable)
                for f in found.schema
            ],
            snapshot_count=len(found.snapshots),
            freshness=FreshnessModel.of(found.freshness),
        )


class AggregatePage(BaseModel):
    """Metrics per group, ordered by the group keys."""

    dataset_id: str
    groups: list[dict[str, Any]] = Field(
        description="One object per group: the group keys, then each metric as <function>_<field>"
        " (count as count)."
    )
    current_to_position: int = Field(
        description="The answer covers every record stored up to this event-log position."
    )


class RecordsPage(BaseModel):
    """One page of records in (time field, record_id) order."""

    dataset_id: str
    count: int = Field(description="Records in this page.")
    records: list[dict[str, Any]] = Field(
        description="Each record maps column names to values; timestamps are ISO 8601 UTC."
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
    current_to_position: int = Field(
        description="The answer holds every record stored up to this event-log position."
    )


class SnapshotList(BaseModel):
    """A dataset's published snapshots, oldest first."""

    dataset_id: str
    snapshots: list[SnapshotRef]


class ManifestFileModel(BaseModel):
    """One Parquet file of a snapshot: one region and one UTC day."""

    key: str
    region: str
    date: str
    rows: int | None = Field(description="Null where your grant limits rows by box or time.")
    bytes: int
    sha256: str
    url: str | None = Field(
        default=None,
        description="Where to fetch it (presigned for S3, file:// when local); only when your "
        "grant covers the whole file.",
    )
    export: str | None = Field(
        default=None,
        description="Otherwise: this API's path to the file's records as your grant shows them.",
    )


class ChainHeadModel(BaseModel):
    """Where one ingest chain stood at the end of the snapshot's log range."""

    partition: int
    version: int
    hash: str


class SnapshotManifest(BaseModel):
    """A snapshot's manifest: files with SHA-256s, the log range and the chain heads."""

    dataset_id: str
    schema_version: int
    snapshot_id: str
    first_position: int
    last_position: int
    row_count: int | None = Field(description="Null where your grant limits rows by box or time.")
    published_at: datetime
    manifest_key: str
    manifest_sha256: str
    manifest_url: str | None = Field(
        description="Where to fetch the manifest; only when your grant covers every file."
    )
    files: list[ManifestFileModel]
    chain_heads: list[ChainHeadModel]
    writer: dict[str, Any]

    @classmethod
    def of(cls, found: PublishedSnapshot) -> SnapshotManifest:
        manifest = found.manifest
        return cls(
            dataset_id=manifest.dataset_id,
            schema_version=manifest.schema_version,
            snapshot_id=manifest.snapshot_id,
            first_position=manifest.first_position,
            last_position=manifest.last_position,
            row_count=manifest.row_count,
            published_at=found.summary.published_at,
            manifest_key=found.summary.manifest_key,
            manifest_sha256=found.summary.manifest_sha256,
            manifest_url=found.manifest_url,
            files=[
                ManifestFileModel(
                    key=f.key,
                    region=f.region,
                    date=f.date,
                    rows=f.rows,
                    bytes=f.bytes,
                    sha256=f.sha256,
                    url=found.file_urls[f.key],
                )
                for f in manifest.files
            ],
            chain_heads=[
                ChainHeadModel(partition=h.partition, version=h.version, hash=h.hash)
                for h in manifest.chain_heads
            ],
            writer=dict(manifest.writer),
        )


class BatchModel(BaseModel):
    """The batch a record was stored in, and its place on its hash chain."""

    chain_id: str
    partition: int
    version: int
    hash: str
    previous_hash: str
    records_digest: str
    recorded_at: datetime
    log_position: int | None = Field(
        description="Event-log position of the batch; known while the record is in the "
        "log's tail (not yet snapshotted), null once a snapshot holds it."
    )


class RecordProvenanceModel(BaseModel):
    """Where a record came from: its provenance, batch and snapshot."""

    record_id: str
    dataset_id: str
    region: str
    provenance: dict[str, Any] = Field(
        description="Source URI, received time, payload SHA-256, connector and version, "
        "region, wire-schema version and trace id."
    )
    batch: BatchModel
    snapshot_id: str | None = Field(description="The snapshot holding it; null while in the tail.")
    trace_id: str | None = Field(
        default=None,
        description="W3C trace id of the trace that carried the record from its connector "
        "through the worker into the store; null if it was not traced.",
    )
    trace_url: str | None = Field(
        default=None, description="That trace in the configured trace viewer, if any."
    )

    @classmethod
    def of(cls, found: RecordProvenance) -> RecordProvenanceModel:
        return cls(
            record_id=found.record_id,
            dataset_id=found.dataset_id,
            region=found.region,
            provenance=found.provenance,
            batch=BatchModel(
                chain_id=str(found.chain_id),
                partition=found.partition,
                version=found.batch_version,
                hash=found.batch_hash,
                previous_hash=found.previous_hash,
                records_digest=found.records_digest,
                recorded_at=found.recorded_at,
                log_position=found.log_position,
            ),
            snapshot_id=found.snapshot_id,
            trace_id=found.provenance.get("trace_id"),
        )


def _identity(definition: DatasetDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "kind": definition.kind.value,
        "version": definition.version,
        "owner_region": definition.owner_region,
        "title": dict(definition.title),
        "classification": definition.classification.label,
    }


def _ref(summary: DatasetSummary) -> SnapshotRef | None:
    latest = summary.latest_snapshot
    return SnapshotRef.of(summary.definition.id, latest) if latest else None


class AccessEntryModel(BaseModel):
    """One access: who asked for what, what was decided on which grounds, what was returned."""

    position: int = Field(description="Position in the event log; page with `after`.")
    at: datetime
    partner_id: str | None = Field(description="Null for the administrator or no credential.")
    action: str
    dataset_id: str | None
    allowed: bool
    reason: str
    agreement_id: str | None
    whitelist_version: int | None
    whitelist_rule: str | None
    rows: int
    columns: list[str]


class AccessLogPage(BaseModel):
    """Access-log entries after a position, oldest first."""

    entries: list[AccessEntryModel]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page was not full."
    )
