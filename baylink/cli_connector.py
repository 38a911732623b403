"""`baylink connector run CONFIG`: run the configured sources until stopped, or once."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError

from baylink.cli_options import Broker, DataDir, EventStore
from baylink.context import PlatformContext, resolve_context
from baylink.errors import BaylinkCliError
from baylink.telemetry_setup import start_telemetry
from connectors.config import ConnectorConfig, ConnectorConfigError, load_config
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from streams.connector_runner import RunnerServices, SourceStatus, run_sources
from streams.publisher import make_producer

connector_app = typer.Typer(help="Run connectors that feed datasets from their sources.")


def register(app: typer.Typer) -> None:
    app.add_typer(connector_app, name="connector")


def _say(line: str) -> None:
    typer.echo(f"{datetime.now(UTC):%H:%M:%S} {line}")


@connector_app.command("run")
def run(
    config_file: Annotated[
        Path, typer.Argument(metavar="CONFIG", help="Connector config (YAML) listing sources.")
    ],
    once: Annotated[
        bool,
        typer.Option("--once", help="One pass over every source, then exit (for tests and cron)."),
    ] = False,
    data_dir: DataDir = None,
    broker: Broker = None,
    event_store: EventStore = None,
) -> None:
    """Run every source of CONFIG concurrently; Ctrl-C or SIGTERM stops them cleanly."""
    start_telemetry("connector")
    try:
        config = load_config(config_file)
    except ConnectorConfigError as error:
        raise BaylinkCliError(str(error)) from None
    context = resolve_context(data_dir, broker, event_store, need_broker=True)
    statuses = asyncio.run(_run(config, context, once))
    for status in statuses:
        _say(
            f"{status.name}: {status.payloads} payloads, {status.records} records, "
            f"{status.rejected_payloads} rejected payloads, {status.unchanged} unchanged, "
            f"{status.failures} failures"
        )
    failed = [s for s in statuses if s.failures]
    if once and failed:
        raise BaylinkCliError(
            f"{len(failed)} of {len(statuses)} sources failed: "
            + "; ".join(f"{s.name}: {s.last_error}" for s in failed)
        )


async def _run(config: ConnectorConfig, context: PlatformContext, once: bool) -> list[SourceStatus]:
    producer = make_producer(context.streams.bootstrap_servers)
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        raise BaylinkCliError(
            f"cannot reach the broker at {context.streams.bootstrap_servers}: {error}"
        ) from None
    catalog = Catalog(context.storage.event_store_url)
    checkpoints = ConnectorCheckpoints(context.storage.event_store_url)
    services = RunnerServices(
        producer, catalog, checkpoints, batch_size=context.streams.batch_size, say=_say
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stopping, services)
    try:
        return await run_sources(config, services, once=once)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await producer.stop()
        checkpoints.close()
        catalog.close()


def _stopping(services: RunnerServices) -> None:
    if not services.stop.is_set():
        _say("stopping: finishing the payloads in hand")
        services.stop.set()
