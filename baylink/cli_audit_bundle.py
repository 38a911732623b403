"""`baylink audit export-bundle` writes an evidence bundle of a log range; `baylink audit
verify --bundle` checks one with no server and no store (ADR 21)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from eventsourcing.persistence import PersistenceError

from baylink.errors import BaylinkCliError
from storage.bundle_verifier import BundleReport, BundleUnreadableError, verify_bundle
from storage.errors import StorageError
from storage.evidence_bundle import (
    PUBLIC_KEY,
    ExportSummary,
    add_report,
    export_bundle,
)
from storage.node_key import load_public_key
from storage.object_store import ObjectStore
from storage.tree_heads import TreeHeadLedger

MAX_EVENTS_ENV = "BAYLINK_AUDIT_BUNDLE_MAX_EVENTS"

From = Annotated[int, typer.Option("--from", min=1, metavar="POSITION", help="First log position.")]
To = Annotated[int, typer.Option("--to", min=1, metavar="POSITION", help="Last log position.")]
Out = Annotated[
    Path, typer.Option("--out", metavar="FILE.zip", help="The bundle to write.", dir_okay=False)
]
WithFiles = Annotated[
    bool,
    typer.Option("--with-files", help="Bundle the snapshots' files, not only their manifests."),
]
MaxEvents = Annotated[
    int,
    typer.Option(
        "--max-events",
        min=1,
        envvar=MAX_EVENTS_ENV,
        help="Refuse a range needing more events than this.",
    ),
]


def export(
    url: str,
    objects: ObjectStore,
    key: Ed25519PublicKey | None,
    start: int,
    end: int,
    out: Path,
    with_files: bool,
    max_events: int,
) -> tuple[ExportSummary, BundleReport]:
    """Write the bundle, then verify it as an auditor would and add that report to it."""
    if start > end:
        raise BaylinkCliError(f"--from {start} is after --to {end}")
    if out.exists():
        raise BaylinkCliError(f"{out} exists: give a new file for --out")
    if not out.parent.is_dir():
        raise BaylinkCliError(f"no directory {out.parent} for --out")
    try:
        ledger = TreeHeadLedger(url)
    except PersistenceError as error:
        raise BaylinkCliError(f"cannot open the event store: {error}") from None
    try:
        summary = export_bundle(
            ledger, objects, key, start, end, out, with_files=with_files, max_events=max_events
        )
    except (StorageError, PersistenceError) as error:
        out.unlink(missing_ok=True)
        raise BaylinkCliError(str(error)) from None
    finally:
        ledger.close()
    report = verify_bundle(out, key)
    add_report(out, report.as_dict())
    return summary, report


def report_export(summary: ExportSummary, out: Path, report: BundleReport) -> None:
    """The summary line; a bundle that does not verify is still written (it is the evidence)
    and exits 1 naming the first bad item, as `verify --bundle` would."""
    typer.echo(
        f"wrote {out}: {summary.events} events, log positions {summary.first_position} to "
        f"{summary.last_position}, {summary.snapshots} snapshots, {out.stat().st_size} bytes; "
        + ("verified" if report.ok else "it does not verify (see its report.json)")
    )
    _fail(report)


def _fail(report: BundleReport) -> None:
    if report.failure is not None:
        failure = report.failure
        print(
            f"baylink: bundle verify failed at {failure.item} ({failure.reason}): "
            f"{failure.message}",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def check(bundle: Path, public_key: Path | None, as_json: bool) -> None:
    """`baylink audit verify --bundle`: exit 0 and a summary, or 1 naming the first bad item."""
    if not bundle.is_file():
        raise BaylinkCliError(f"no bundle at {bundle}")
    key = _given_key(public_key) if public_key is not None else _bundled_key(bundle)
    try:
        report = verify_bundle(bundle, key)
    except BundleUnreadableError as error:
        raise BaylinkCliError(str(error)) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    elif report.ok and report.verified is not None:
        verified = report.verified
        under = "" if public_key is not None else f" under the bundle's own key ({PUBLIC_KEY})"
        typer.echo(
            f"verified bundle of log positions {report.start} to {report.end}{under}: "
            f"{verified.events} events ({report.first_position} to {report.last_position}), "
            f"{verified.batches} batches on {verified.chains} chains, {verified.tree_heads} "
            f"signed tree heads, {verified.snapshots} snapshots"
        )
    _fail(report)


def _bundled_key(bundle: Path) -> Ed25519PublicKey | None:
    """The bundle's own key: it shows the bundle is whole, not that the node signed it."""
    try:
        with zipfile.ZipFile(bundle) as opened:
            pem = opened.read(PUBLIC_KEY) if PUBLIC_KEY in opened.namelist() else None
    except (OSError, zipfile.BadZipFile) as error:
        raise BaylinkCliError(f"{bundle} is not a readable zip: {error}") from None
    if pem is None:
        return None
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise BaylinkCliError(
            f"the bundle's {PUBLIC_KEY} is not a PEM public key: {error}"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BaylinkCliError(f"the bundle's {PUBLIC_KEY} is not an Ed25519 key")
    return key


def _given_key(path: Path) -> Ed25519PublicKey:
    try:
        return load_public_key(path)
    except StorageError as error:
        raise BaylinkCliError(str(error)) from None
