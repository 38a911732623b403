"""`baylink ingest` (publish a file or URL through Kafka) and `baylink worker`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from baylink.cli_options import Broker, DataDir, EventStore, Json
from baylink.context import PlatformContext, resolve_context
from baylink.errors import BaylinkCliError
from baylink.telemetry_setup import start_telemetry
from connectors.crs import CrsError, crs_name
from connectors.errors import PayloadError, SourceError
from connectors.formats import FORMATS, Format, ParseOptions, UnknownFormatError, format_named
from connectors.formats import format_of as format_of_location
from connectors.gtfs_static import GtfsStatic
from connectors.shapefile import shapefile_bundle
from connectors.source import FetchedPayload, fetch
from domain.dataset import DatasetDefinition
from domain.errors import DomainError
from domain.ingest import chain_id_for
from storage.catalog import Catalog
from storage.ingestion import IngestLedger, IngestOutcome, outcome_of
from streams import ingest_pipeline
from streams.ingest_pipeline import IngestResult, IngestTarget
from streams.publisher import PublishReport, make_producer
from streams.worker import run_forever

tracer = trace.get_tracer("baylink.connectors")


@dataclass(frozen=True)
class IngestRequest:
    """One `baylink ingest`: what to read, how, into which dataset, and whether to wait."""

    context: PlatformContext
    ledger: IngestLedger
    definition: DatasetDefinition
    location: str
    fmt: Format
    options: ParseOptions
    region: str | None
    wait: bool
    timeout: float


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("worker")(worker)


def _chosen_format(format_name: str | None, location: str) -> Format:
    try:
        return format_named(format_name) if format_name else format_of_location(location)
    except UnknownFormatError as error:
        raise BaylinkCliError(str(error)) from None


def _static_gtfs(path: Path | None) -> GtfsStatic | None:
    if path is None:
        return None
    try:
        return GtfsStatic.from_zip(path.read_bytes())
    except OSError as error:
        raise BaylinkCliError(f"cannot read {path}: {error.strerror or error}") from None
    except PayloadError as error:
        raise BaylinkCliError(f"{path}: {error.message}") from None


def _crs(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return crs_name(text)
    except CrsError as error:
        raise BaylinkCliError(f"--crs: {error}") from None


def _structure(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise BaylinkCliError(f"cannot read {path}: {error.strerror or error}") from None


def ingest(
    location: Annotated[str, typer.Argument(metavar="PATH|URL", help="File or URL to ingest.")],
    dataset: Annotated[str, typer.Option(help="Id of a registered dataset.")],
    format_name: Annotated[
        str | None,
        typer.Option("--format", help=f"One of {', '.join(FORMATS)}. [default: by extension]"),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="Region of the source. [default: the dataset's owner region]"),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(help="CRS of the source (EPSG:<code> or GCJ-02), overriding its own."),
    ] = None,
    static_gtfs: Annotated[
        Path | None,
        typer.Option(help="Static GTFS zip that GTFS-Realtime entities are joined with."),
    ] = None,
    structure: Annotated[
        Path | None,
        typer.Option(help="SDMX-ML structure message (the DSD) that SDMX data is read by."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Return once every record is accepted or rejected.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 600.0,
    data_dir: DataDir = None,
    broker: Broker = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """Publish a file or URL to the dataset's ingest topic (one message per batch)."""
    start_telemetry("connector")
    fmt = _chosen_format(format_name, location)
    options = ParseOptions(
        crs=_crs(crs),
        static_gtfs=_static_gtfs(static_gtfs),
        source_name=Path(location.split("?", maxsplit=1)[0]).name or None,
        structure=_structure(structure),
    )
    context = resolve_context(data_dir, broker, event_store, need_broker=True)
    catalog = Catalog(context.storage.event_store_url)
    ledger = IngestLedger(context.storage.event_store_url, context.streams.broker_epoch)
    try:
        try:
            definition = catalog.get(dataset)
        except DomainError as error:
            raise BaylinkCliError(str(error)) from None
        _ingest(
            IngestRequest(
                context, ledger, definition, location, fmt, options, region, wait, timeout
            ),
            as_json,
        )
    finally:
        ledger.close()
        catalog.close()


def _fetch(location: str) -> FetchedPayload:
    """The payload at ``location``; a local .shp is read together with its sidecar files."""
    path = Path(location)
    if path.suffix.lower() == ".shp" and path.is_file():
        fetched = fetch(location)
        return replace(fetched, data=shapefile_bundle(path.absolute()))
    return fetch(location)


def _fetch_parse_publish(request: IngestRequest, as_json: bool) -> PayloadError | None:
    context, ledger, definition = request.context, request.ledger, request.definition
    location = request.location
    with tracer.start_as_current_span("connector fetch", attributes={"url.full": location}):
        try:
            fetched = _fetch(location)
        except SourceError as error:
            raise BaylinkCliError(str(error)) from None
        except PayloadError as error:
            raise BaylinkCliError(f"{location}: {error.message}") from None
    target = IngestTarget(definition, request.fmt, request.options, request.region)
    heads_before = {
        p: ledger.chain_head(chain_id_for(definition.id, p)).version
        for p in range(definition.partitions)
    }
    try:
        result = asyncio.run(_parse_and_publish(context, fetched, target))
    except KafkaError as error:
        raise BaylinkCliError(
            f"cannot publish to {context.streams.bootstrap_servers}: {error}"
        ) from None
    report = result.report
    if not request.wait:
        summary = {"published_messages": report.messages, "published_records": report.rows}
        typer.echo(
            json.dumps(summary)
            if as_json
            else f"published {report.rows} records in {report.messages} messages to {report.topic}"
        )
    else:
        with tracer.start_as_current_span("wait for the store"):
            outcome = _wait_for(ledger, definition, report, heads_before, request.timeout)
        _print_outcome(outcome, as_json)
    return result.parse_error


def _ingest(request: IngestRequest, as_json: bool) -> None:
    definition = request.definition
    with tracer.start_as_current_span(
        f"ingest {definition.id}",
        attributes={"baylink.dataset": definition.id, "baylink.connector": request.fmt.connector},
    ):
        parse_error = _fetch_parse_publish(request, as_json)
    if parse_error is not None:
        raise BaylinkCliError(
            f"{request.location}: {parse_error.message} (recorded as a rejected payload)"
        )


async def _parse_and_publish(
    context: PlatformContext, fetched: FetchedPayload, target: IngestTarget
) -> IngestResult:
    provenance = ingest_pipeline.provenance_of(fetched, target)
    parsed, parse_error = await ingest_pipeline.parse(fetched, target)
    producer = make_producer(context.streams.bootstrap_servers)
    await producer.start()
    try:
        with _progress() as progress:
            task = progress.add_task("publishing", total=len(parsed.rows))
            report = await ingest_pipeline.publish(
                producer,
                fetched,
                target,
                provenance,
                parsed,
                parse_error,
                batch_size=context.streams.batch_size,
                on_progress=lambda n: progress.advance(task, n),
            )
    finally:
        await producer.stop()
    return IngestResult(report, parsed, parse_error, provenance)


def _wait_for(
    ledger: IngestLedger,
    definition: DatasetDefinition,
    report: PublishReport,
    heads_before: dict[int, int],
    timeout: float,
) -> IngestOutcome:
    targets = report.last_offsets()
    deadline = time.monotonic() + timeout
    with _progress() as progress:
        task = progress.add_task("waiting for the store", total=len(targets))
        pending = dict(targets)
        while pending:
            for partition, offset in list(pending.items()):
                stored = ledger.resume_offset(report.topic, partition)
                if stored is not None and stored >= offset:
                    del pending[partition]
                    progress.advance(task)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise BaylinkCliError(
                    f"timed out after {timeout:.0f}s: {len(pending)} of {len(targets)} "
                    f"partitions of {report.topic} are not yet in the store "
                    "(is a worker running?)"
                )
            time.sleep(0.1)
    sources = {f"{report.topic}:{p}@{o}" for p, o in report.positions}
    return outcome_of(ledger, definition, heads_before, sources)


def _print_outcome(outcome: IngestOutcome, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "accepted": outcome.accepted,
                    "rejected": outcome.rejected,
                    "duplicates": outcome.duplicates,
                    "reasons": outcome.reasons,
                }
            )
        )
        return
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(outcome.reasons.items()))
    typer.echo(
        f"accepted {outcome.accepted}, rejected {outcome.rejected}"
        + (f" ({reasons})" if reasons else "")
        + f", duplicates {outcome.duplicates}"
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )


def worker(
    data_dir: DataDir = None,
    broker: Broker = None,
    event_store: EventStore = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Consume every dataset's ingest topic and store its records exactly once."""
    start_telemetry("worker", log_level=log_level)
    context = resolve_context(data_dir, broker, event_store, need_broker=True)
    run_forever(context.streams, context.storage)
