"""Published snapshots and their manifests, with URLs to fetch the Parquet files from."""

from __future__ import annotations

from fastapi import APIRouter

from api.dependencies import DatasetId, QueryServiceDep, SnapshotId
from api.errors import problem_responses
from api.schemas import SnapshotList, SnapshotManifest, SnapshotRef

router = APIRouter(tags=["snapshots"])


@router.get("/datasets/{dataset_id}/snapshots", responses=problem_responses(404, 422, 503))
def list_snapshots(dataset_id: DatasetId, query: QueryServiceDep) -> SnapshotList:
    """The dataset's published snapshots, oldest first."""
    return SnapshotList(
        dataset_id=dataset_id,
        snapshots=[SnapshotRef.of(dataset_id, s) for s in query.snapshots(dataset_id)],
    )


@router.get("/snapshots/{dataset_id}/{snapshot_id}", responses=problem_responses(404, 422, 503))
def get_snapshot(
    dataset_id: DatasetId, snapshot_id: SnapshotId, query: QueryServiceDep
) -> SnapshotManifest:
    """A snapshot's manifest: each file with its SHA-256, row count and a URL to fetch it."""
    return SnapshotManifest.of(query.snapshot(dataset_id, snapshot_id))
