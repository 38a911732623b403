"""`baylink relay` delivers partners' Kafka and webhook subscriptions; `baylink deliveries` lists
what was delivered, for auditors."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from typing import Annotated

import typer

from baylink.cli_options import Broker, DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from baylink.runtime.pseudonym_secret import PSEUDONYM_SECRET_ENV
from baylink.telemetry_setup import start_telemetry

deliveries_app = typer.Typer(help="What partners were delivered.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("relay")(relay)
    app.add_typer(deliveries_app, name="deliveries")


def relay(
    data_dir: DataDir = None,
    broker: Broker = None,
    event_store: EventStore = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Follow the event store and deliver each subscription its partner's view of new records."""
    start_telemetry("relay", log_level=log_level)
    secret = os.environ.get(PSEUDONYM_SECRET_ENV)
    if not secret:
        raise BaylinkCliError(
            f"set {PSEUDONYM_SECRET_ENV} to the API's pseudonym secret: delivered pseudonyms "
            "and webhook signatures must match what the API gives and shows"
        )
    context = resolve_context(data_dir, broker, event_store, need_broker=True)
    # Imported here: every other command (the ingest worker among them) starts without it.
    from streams.delivery_runner import relay_until_stopped

    asyncio.run(
        relay_until_stopped(
            context.storage.event_store_url,
            context.streams.bootstrap_servers,
            secret.encode(),
        )
    )


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BaylinkCliError(f"{option}: expected an ISO 8601 time, got {text!r}") from None
    if moment.utcoffset() is None:
        raise BaylinkCliError(f"{option}: give a UTC offset, e.g. 2026-06-01T08:00:00+08:00")
    return moment


@deliveries_app.command("list")
def list_deliveries(
    partner: Annotated[str | None, typer.Option(help="Only this partner's.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset's.")] = None,
    since: Annotated[str | None, typer.Option(help="Delivered at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Delivered before (ISO 8601).")] = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """What was delivered to whom, when, under which agreement and whitelist version."""
    start, end = _moment(since, "--since"), _moment(until, "--until")
    context = resolve_context(data_dir, None, event_store)
    from storage.delivery_log import DeliveryLog

    log = DeliveryLog(context.storage.event_store_url)
    try:
        entries = log.entries(partner, dataset, start, end, limit=1_000_000)
    finally:
        log.close()
    if as_json:
        typer.echo(json.dumps([e.as_dict() for e in entries]))
        return
    for e in entries:
        typer.echo(
            f"{e.at.isoformat()} {e.partner_id} {e.dataset_id} via {e.channel} "
            f"({e.subscription_id}): {e.records} records, log {e.first_position}..{e.last_position}"
            f", agreement {e.agreement_id}, whitelist v{e.whitelist_version}, "
            f"ids sha256 {e.record_ids_digest[:16]}"
        )
    typer.echo(f"{sum(e.records for e in entries)} records in {len(entries)} deliveries")
