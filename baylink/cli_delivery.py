"""`baylink relay`: deliver partners' Kafka and webhook subscriptions."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from baylink.cli_options import Broker, DataDir, EventStore
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from baylink.runtime.pseudonym_secret import PSEUDONYM_SECRET_ENV
from baylink.telemetry_setup import start_telemetry
from streams.delivery_runner import relay_until_stopped


def register(app: typer.Typer) -> None:
    app.command("relay")(relay)


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
    asyncio.run(
        relay_until_stopped(
            context.storage.event_store_url,
            context.streams.bootstrap_servers,
            secret.encode(),
        )
    )
