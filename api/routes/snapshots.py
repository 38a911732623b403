"""Published snapshots and their manifests, with URLs to fetch the Parquet files from.

A file's URL is given only when the caller's grant covers the whole file; otherwise the file
points to its records in this API, where the grant is applied."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter

from api.dependencies import DatasetId, PolicyDep, SnapshotId
from api.errors import problem_responses
from api.schemas import SnapshotList, SnapshotManifest, SnapshotRef

router = APIRouter(tags=["snapshots"])


@router.get(
    "/datasets/{dataset_id}/snapshots", responses=problem_responses(401, 404, 422, 429, 503)
)
def list_snapshots(dataset_id: DatasetId, policy: PolicyDep) -> SnapshotList:
    """The dataset's published snapshots, oldest first."""
    found, grant = policy.snapshots(dataset_id)
    refs = [SnapshotRef.of(dataset_id, s) for s in found]
    if not policy.principal.admin and grant.limits_rows:
        for ref in refs:
            ref.row_count = None  # counts rows the grant does not reach
    return SnapshotList(dataset_id=dataset_id, snapshots=refs)


@router.get(
    "/snapshots/{dataset_id}/{snapshot_id}", responses=problem_responses(401, 404, 422, 429, 503)
)
def get_snapshot(
    dataset_id: DatasetId, snapshot_id: SnapshotId, policy: PolicyDep
) -> SnapshotManifest:
    """A snapshot's manifest: each file with its SHA-256, row count and a URL to fetch it, or,
    where the caller's grant does not cover the whole file, the path of its records here."""
    found, grant = policy.snapshot(dataset_id, snapshot_id)
    manifest = SnapshotManifest.of(found)
    if policy.principal.admin:
        return manifest
    files = [f for f in manifest.files if grant.reaches_region(f.region)]
    whole = grant.whole
    for file in files:
        if not whole:
            file.url = None
            file.export = _export_path(dataset_id, file.region, file.date)
    manifest.files = files
    manifest.row_count = sum(f.rows or 0 for f in files)
    if grant.limits_rows_within_files:
        manifest.row_count = None
        for file in files:
            file.rows = None
    if not whole or len(files) != len(found.manifest.files):
        manifest.manifest_url = None
    return manifest


def _export_path(dataset_id: str, region: str, day: str) -> str:
    start = date.fromisoformat(day)
    query = urlencode(
        {
            "region": region,
            "start": f"{start.isoformat()}T00:00:00Z",
            "end": f"{(start + timedelta(days=1)).isoformat()}T00:00:00Z",
            "format": "parquet",
        }
    )
    return f"/v1/datasets/{dataset_id}/records?{query}"
