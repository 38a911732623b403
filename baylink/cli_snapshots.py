"""`baylink snapshots build` (once) and `baylink snapshots follow` (continuously)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from baylink.cli_options import DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from baylink.telemetry_setup import start_telemetry
from domain.errors import DomainError
from storage.catalog import Catalog
from storage.errors import StorageError
from storage.head_timestamps import TimestampAuthority, load_trust_anchors
from storage.node_key import load_node_key
from storage.object_store import ObjectStore
from storage.object_store_factory import open_object_store
from storage.settings import StorageSettings
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from streams.snapshot_follower import follow, stop_on_signals
from streams.tree_head_follower import start_tree_heads

snapshots_app = typer.Typer(help="Build Parquet snapshots of stored records.", no_args_is_help=True)

ObjectStoreOption = Annotated[
    str | None,
    typer.Option(
        "--object-store",
        metavar="URL",
        help="file://DIR or s3://BUCKET [default: the running platform's]",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(snapshots_app, name="snapshots")


def _object_store(url: str) -> ObjectStore:
    try:
        return open_object_store(url)
    except StorageError as error:
        raise BaylinkCliError(str(error)) from None


@snapshots_app.command("build")
def build(
    data_dir: DataDir = None,
    event_store: EventStore = None,
    object_store: ObjectStoreOption = None,
    as_json: Json = False,
) -> None:
    """Snapshot every record stored since the last snapshot, and publish the manifests."""
    start_telemetry("snapshots")
    context = resolve_context(data_dir, None, event_store)
    store = _object_store(object_store or context.storage.object_store_url)
    ledger = SnapshotLedger(context.storage.event_store_url)
    catalog = Catalog(context.storage.event_store_url)
    try:
        manifests = SnapshotBuilder(ledger, catalog, store).run_once()
    except (DomainError, StorageError) as error:
        raise BaylinkCliError(str(error)) from None
    finally:
        ledger.close()
        catalog.close()
    if as_json:
        typer.echo(json.dumps([json.loads(m.to_json()) for m in manifests]))
        return
    if not manifests:
        typer.echo("nothing new to snapshot")
    for manifest in manifests:
        typer.echo(
            f"{manifest.dataset_id} snapshot {manifest.snapshot_id}: {manifest.row_count} rows "
            f"in {len(manifest.files)} files"
        )


@snapshots_app.command("follow")
def follow_log(
    data_dir: DataDir = None,
    event_store: EventStore = None,
    object_store: ObjectStoreOption = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between snapshots. [default: 30]")
    ] = None,
) -> None:
    """Keep snapshotting newly stored records until stopped (and, with a node key configured,
    keep signing the Merkle log's tree heads)."""
    start_telemetry("snapshots", log_level="INFO")
    context = resolve_context(data_dir, None, event_store)
    storage = context.storage
    store = _object_store(object_store or storage.object_store_url)
    stop = stop_on_signals()
    heads = None
    if storage.tree_head_key_file:
        try:
            key = load_node_key(Path(storage.tree_head_key_file))
        except StorageError as error:
            raise BaylinkCliError(str(error)) from None
        heads = start_tree_heads(
            storage.event_store_url,
            key,
            storage.tree_head_every_events,
            storage.tree_head_every_seconds,
            stop,
            timestamp_authority(storage),
        )
    try:
        follow(
            storage.event_store_url,
            store,
            interval if interval is not None else storage.snapshot_interval_seconds,
            stop,
        )
    finally:
        stop.set()
        if heads is not None:
            heads.join(timeout=10)


def timestamp_authority(storage: StorageSettings) -> TimestampAuthority | None:
    """The TSA that timestamps tree heads, if one is configured."""
    if not storage.tree_head_tsa_url:
        return None
    ca_file = storage.tree_head_tsa_ca_file
    try:
        anchors = load_trust_anchors(Path(ca_file)) if ca_file else []
        return TimestampAuthority(
            storage.tree_head_tsa_url, anchors, storage.tree_head_tsa_timeout_seconds
        )
    except StorageError as error:
        raise BaylinkCliError(str(error)) from None
