"""`baylink audit`: the Merkle log's signed tree heads, and inclusion and consistency proofs
against them, read from the platform's event store (ADR 17). ``--json`` prints what the audit
API answers. `baylink audit verify` checks a stopped platform's whole store offline (ADR 18);
`replay` rebuilds the store as it was at a log position and `rebuild-snapshot` rebuilds a
snapshot and compares it bit for bit (ADR 19)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.audit_schemas import ConsistencyProofModel, InclusionProofModel, SignedTreeHeadModel
from baylink import cli_audit_bundle, cli_audit_questions
from baylink.cli_options import DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from baylink.runtime.node_key import NODE_KEY_ENV, NODE_KEY_FILE
from domain.errors import DomainError
from domain.tree_head_log import TREE_HEAD_LOG_ID, TreeHeadLog
from storage.catalog import Catalog
from storage.errors import StorageError
from storage.evidence_bundle import DEFAULT_MAX_EVENTS
from storage.examining_pool import ExaminingPool, default_workers
from storage.head_timestamps import load_trust_anchors
from storage.log_replay import (
    LogReplay,
    ReplayLedger,
    parse_until,
    position_at,
)
from storage.log_verifier import AuditLedger, KeptHead, LogVerifier, VerifyReport
from storage.node_key import load_public_key
from storage.object_store import ObjectStore
from storage.object_store_factory import open_object_store
from storage.object_store_local import LocalObjectStore
from storage.snapshot_rebuild import SnapshotRebuild
from storage.snapshots import SnapshotLedger
from storage.tree_heads import TreeHeadLedger

audit_app = typer.Typer(
    help="Signed tree heads of the event history, and proofs against them.",
    no_args_is_help=True,
)
_NO_HEADS = (
    "no signed tree head is recorded yet: `baylink up` records one every "
    "BAYLINK_STORAGE_TREE_HEAD_EVERY_EVENTS events or _EVERY_SECONDS seconds"
)


def register(app: typer.Typer) -> None:
    cli_audit_questions.add_commands(audit_app)
    app.add_typer(audit_app, name="audit")


@contextmanager
def _ledger(data_dir: DataDir, event_store: EventStore) -> Iterator[TreeHeadLedger]:
    context = resolve_context(data_dir, None, event_store)
    ledger = TreeHeadLedger(context.storage.event_store_url)
    try:
        yield ledger
    except (DomainError, StorageError) as error:
        raise BaylinkCliError(str(error)) from None
    finally:
        ledger.close()


def _head_line(head: TreeHeadLog.Recorded) -> str:
    return (
        f"tree head {head.tree_size} (log position {head.last_position}), "
        f"signed {head.timestamp.isoformat()} by key {head.key_id[:16]}\n"
        f"  root      {head.root.hex()}\n"
        f"  signature {head.signature.hex()}"
    )


@audit_app.command("head")
def head(data_dir: DataDir = None, event_store: EventStore = None, as_json: Json = False) -> None:
    """The newest signed tree head."""
    with _ledger(data_dir, event_store) as ledger:
        latest = ledger.latest()
    if latest is None:
        raise BaylinkCliError(_NO_HEADS)
    typer.echo(SignedTreeHeadModel.of(latest).model_dump_json() if as_json else _head_line(latest))


@audit_app.command("prove")
def prove(
    position: Annotated[int, typer.Argument(min=1, help="Log position of the event.")],
    tree_size: Annotated[
        int | None,
        typer.Option(min=1, help="Size of a signed head. [default: the newest head]"),
    ] = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """The inclusion proof of the event at POSITION in the tree of a signed head."""
    with _ledger(data_dir, event_store) as ledger:
        if tree_size is None:
            latest = ledger.latest()
            if latest is None:
                raise BaylinkCliError(_NO_HEADS)
            tree_size = latest.tree_size
        proof = ledger.inclusion(position, tree_size)
    leaf = proof.leaf
    if as_json:
        typer.echo(InclusionProofModel.of(proof).model_dump_json())
        return
    typer.echo(_head_line(proof.head))
    typer.echo(
        f"event at log position {leaf.position}: {leaf.topic} "
        f"{leaf.originator_id} v{leaf.originator_version}\n"
        f"  leaf {proof.index}, hash {leaf.hash().hex()}\n"
        f"  audit path ({len(proof.path)} hashes, bottom up):"
    )
    for sibling in proof.path:
        typer.echo(f"    {sibling.hex()}")


@audit_app.command("prove-consistency")
def prove_consistency(
    first: Annotated[int, typer.Argument(min=1, help="Size of the older signed head.")],
    second: Annotated[int, typer.Argument(min=1, help="Size of the newer signed head.")],
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """The proof that the tree of the signed head of FIRST leaves is a prefix of SECOND's."""
    with _ledger(data_dir, event_store) as ledger:
        proof = ledger.consistency(first, second)
    if as_json:
        typer.echo(ConsistencyProofModel.of(proof).model_dump_json())
        return
    typer.echo(_head_line(proof.first))
    typer.echo(_head_line(proof.second))
    typer.echo(f"  consistency path ({len(proof.path)} hashes):")
    for node in proof.path:
        typer.echo(f"    {node.hex()}")


ObjectStoreOption = Annotated[
    str | None,
    typer.Option(
        "--object-store",
        metavar="URL",
        help="file://DIR or s3://BUCKET, with --event-store. [default: the platform's]",
        show_default=False,
    ),
]
KeptHeadOption = Annotated[
    str | None,
    typer.Option(
        "--expect-head",
        metavar="SIZE:ROOT",
        help="A tree head kept from an earlier look (size, hex root as `audit head` prints "
        "them): the log must still hold it, so removed or rewritten history is found.",
        show_default=False,
    ),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        metavar="PEM",
        help="Ed25519 public key the tree heads must verify under. [default: the node key]",
        show_default=False,
    ),
]


TsaCertOption = Annotated[
    Path | None,
    typer.Option(
        "--tsa-cert",
        metavar="PEM",
        envvar="BAYLINK_STORAGE_TREE_HEAD_TSA_CA_FILE",
        help="CA certificates (PEM) that heads' RFC 3161 timestamps must chain to.",
        show_default=False,
    ),
]
RequireTimestampsOption = Annotated[
    bool,
    typer.Option(
        "--require-timestamps", help="Every signed tree head must carry an RFC 3161 timestamp."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=0,
        help="Processes that examine events ahead of the pass (0: none). "
        "[default: one per core, at most 4]",
        show_default=False,
    ),
]
BundleOption = Annotated[
    Path | None,
    typer.Option(
        "--bundle",
        metavar="FILE.zip",
        help="Check an evidence bundle (from export-bundle) with no server and no store.",
        show_default=False,
    ),
]


@audit_app.command("verify")
def verify(
    data_dir: DataDir = None,
    event_store: EventStore = None,
    object_store: ObjectStoreOption = None,
    public_key: PublicKeyOption = None,
    tsa_cert: TsaCertOption = None,
    require_timestamps: RequireTimestampsOption = False,
    expect_head: KeptHeadOption = None,
    as_json: Json = False,
    bundle: BundleOption = None,
    workers: WorkersOption = None,
) -> None:
    """Check a stopped platform's whole history offline: every ingest chain, every signed tree
    head against the events, every snapshot against its manifest, files and chain heads. Exits 1
    at the first failure, naming its log position. With --bundle, an evidence bundle instead."""
    if bundle is not None:
        if data_dir is not None or event_store is not None or object_store is not None:
            raise BaylinkCliError("--bundle reads no store: leave out --data-dir and the URLs")
        if require_timestamps or expect_head is not None:
            # Not silently ignored: an auditor asking for them must not take a pass as one.
            raise BaylinkCliError(
                "--bundle checks neither timestamps nor a kept head: "
                "leave out --require-timestamps and --expect-head"
            )
        cli_audit_bundle.check(bundle, public_key, as_json)
        return
    if (event_store is None) != (object_store is None):
        raise BaylinkCliError("--event-store and --object-store go together (or use --data-dir)")
    try:
        kept_head = None if expect_head is None else KeptHead.parse(expect_head)
    except ValueError as error:
        raise BaylinkCliError(f"--expect-head: {error}") from None
    context = resolve_context(data_dir, None, event_store)
    url = context.storage.event_store_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise BaylinkCliError(f"no event store at {url.removeprefix('sqlite:///')}")
    try:
        anchors = load_trust_anchors(tsa_cert) if tsa_cert is not None else []
        objects = open_object_store(object_store or context.storage.object_store_url)
        ledger = AuditLedger(url)
    except StorageError as error:
        raise BaylinkCliError(str(error)) from None
    except PersistenceError as error:
        raise BaylinkCliError(f"cannot open the event store: {error}") from None
    try:
        # Given URLs, the auditor names the key: a local data dir's key is no evidence.
        key = _public_key(public_key, None if event_store else context.data_dir, ledger)
        report = _verified(ledger, objects, key, anchors, require_timestamps, kept_head, workers)
    except StorageError as error:
        raise BaylinkCliError(str(error)) from None
    except PersistenceError as error:
        raise BaylinkCliError(f"cannot read the event store: {error}") from None
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    elif report.failure is None:
        typer.echo(
            f"verified {report.events} events up to log position {report.last_position}: "
            f"{report.batches} batches on {report.chains} chains, {report.tree_heads} signed "
            f"tree heads, {report.snapshots} snapshots; not yet under a signed head: "
            f"{report.unsigned_events}"
            + (f"; the kept head of {kept_head.tree_size} events matches" if kept_head else "")
        )
    if report.failure is not None:
        failure = report.failure
        print(
            f"baylink: verify failed at log position {failure.position} "
            f"({failure.reason}): {failure.message}",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def _public_key(
    given: Path | None, data_dir: Path | None, ledger: AuditLedger
) -> Ed25519PublicKey | None:
    """The key the auditor gave, else the node key's; None only when no head is recorded."""
    if given is not None:
        return load_public_key(given)
    configured = os.environ.get(NODE_KEY_ENV)
    node_key = Path(configured) if configured else data_dir / NODE_KEY_FILE if data_dir else None
    if node_key is not None and node_key.is_file():
        return load_public_key(node_key)
    if ledger.recorder.select_events(TREE_HEAD_LOG_ID, limit=1):
        where = f" at {node_key}" if node_key else ""
        raise BaylinkCliError(
            f"tree heads are recorded but there is no node key{where}: "
            "pass the public key they were signed with as --public-key PEM"
        )
    return None


def _verified(
    ledger: AuditLedger,
    objects: ObjectStore,
    key: Ed25519PublicKey | None,
    tsa_anchors: list[x509.Certificate],
    require_timestamps: bool,
    kept_head: KeptHead | None = None,
    workers: int | None = None,
) -> VerifyReport:
    total = ledger.position()
    count = default_workers() if workers is None else workers
    console = Console(stderr=True)
    # On a terminal only: a pipe or a log file gets the one result line and nothing else.
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    pool = ExaminingPool(ledger.event_store_url, count) if count else None
    with progress, contextlib.ExitStack() as stack:
        if pool is not None:
            stack.callback(pool.close)
        task = progress.add_task("verifying", total=total)
        verifier = LogVerifier(
            ledger,
            objects,
            key,
            on_progress=lambda position: progress.update(task, completed=position),
            tsa_anchors=tsa_anchors,
            require_timestamps=require_timestamps,
            kept_head=kept_head,
            pool=pool,
        )
        return verifier.run()


def _audited_stores(
    data_dir: Path | None, event_store: str | None, object_store: str | None
) -> tuple[str, ObjectStore]:
    """The event-store URL and the object store an audit command reads, checked to exist."""
    if (event_store is None) != (object_store is None):
        raise BaylinkCliError("--event-store and --object-store go together (or use --data-dir)")
    context = resolve_context(data_dir, None, event_store)
    url = context.storage.event_store_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise BaylinkCliError(f"no event store at {url.removeprefix('sqlite:///')}")
    try:
        return url, open_object_store(object_store or context.storage.object_store_url)
    except StorageError as error:
        raise BaylinkCliError(str(error)) from None


def _progress_bar() -> Progress:
    console = Console(stderr=True)
    # On a terminal only, as for verify: a pipe gets the result line and nothing else.
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except (DomainError, StorageError) as error:
        raise BaylinkCliError(str(error)) from None
    except PersistenceError as error:
        raise BaylinkCliError(f"cannot read the event store: {error}") from None


@audit_app.command("replay")
def replay(
    until: Annotated[
        str,
        typer.Option(
            "--until",
            metavar="POSITION|TIME",
            help="Last log position to replay, or an ISO-8601 time with its UTC offset "
            "(the log up to the first event stamped after it).",
            show_default=False,
        ),
    ],
    into: Annotated[
        Path,
        typer.Option(
            "--into",
            metavar="DIR",
            help="An empty or new directory: the sandbox's data dir.",
            show_default=False,
        ),
    ],
    data_dir: DataDir = None,
    event_store: EventStore = None,
    object_store: ObjectStoreOption = None,
) -> None:
    """Rebuild the store as it was at a log position (or time) in a sandbox data dir that
    every read command takes as --data-dir: the events up to there, at their own positions,
    and the files of the snapshots published by then."""
    url, objects = _audited_stores(data_dir, event_store, object_store)
    with _store_errors():
        end = parse_until(until)
        source = ReplayLedger(url)
        try:
            position = end if isinstance(end, int) else position_at(source, end)
            with _progress_bar() as progress:
                task = progress.add_task("replaying", total=position)
                report = LogReplay(
                    source,
                    objects,
                    on_progress=lambda at: progress.update(task, completed=at),
                ).into(into, position)
        finally:
            source.close()
    typer.echo(
        f"replayed {report.events} events up to log position {report.last_position} into "
        f"{into}: {report.snapshots} snapshots ({report.objects} objects)"
    )


@audit_app.command("rebuild-snapshot")
def rebuild_snapshot(
    snapshot_id: Annotated[str, typer.Argument(metavar="ID", help="The snapshot's id.")],
    dataset: Annotated[
        str | None,
        typer.Option(
            help="The dataset, when several published a snapshot of this id.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    object_store: ObjectStoreOption = None,
    as_json: Json = False,
) -> None:
    """Rebuild a published snapshot from the events, as the snapshot builder built it, and
    compare every file's sha256 and the manifest's with the published ones. Exits 1 naming
    the first file that differs."""
    url, objects = _audited_stores(data_dir, event_store, object_store)
    with _store_errors(), TemporaryDirectory(prefix="baylink-rebuild-") as scratch:
        ledger, catalog = SnapshotLedger(url), Catalog(url)
        try:
            rebuild = SnapshotRebuild(ledger, catalog, objects, LocalObjectStore(Path(scratch)))
            report = rebuild.run(snapshot_id, dataset)
        finally:
            ledger.close()
            catalog.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    elif report.ok:
        typer.echo(
            f"rebuilt snapshot {report.snapshot_id} of {report.dataset_id} (published at log "
            f"position {report.position}): {report.files} files, {report.rows} rows, manifest "
            f"sha256 {report.manifest_sha256}, all equal to the published"
        )
    if not report.ok:
        print(
            f"baylink: rebuilt snapshot {report.snapshot_id} of {report.dataset_id} differs "
            f"at {report.mismatch}: {report.detail}",
            file=sys.stderr,
        )
        raise typer.Exit(1)


@audit_app.command("export-bundle")
def export_bundle(
    start: cli_audit_bundle.From,
    end: cli_audit_bundle.To,
    out: cli_audit_bundle.Out,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    object_store: ObjectStoreOption = None,
    public_key: PublicKeyOption = None,
    with_files: cli_audit_bundle.WithFiles = False,
    max_events: cli_audit_bundle.MaxEvents = DEFAULT_MAX_EVENTS,
) -> None:
    """Write an evidence bundle of log positions --from to --to: the events as stored, the
    signed tree heads and proof that cover them, the manifests of the snapshots published in
    the range, the node's public key and a verification report, for `verify --bundle`."""
    url, objects = _audited_stores(data_dir, event_store, object_store)
    with _store_errors():
        ledger = AuditLedger(url)
        try:
            # As for verify: given URLs, the auditor names the key.
            node_dir = None if event_store else resolve_context(data_dir, None, None).data_dir
            key = _public_key(public_key, node_dir, ledger)
        finally:
            ledger.close()
        summary, report = cli_audit_bundle.export(
            url, objects, key, start, end, out, with_files, max_events
        )
    cli_audit_bundle.report_export(summary, out, report)
