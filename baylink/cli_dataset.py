"""`baylink dataset register FILE` and `baylink dataset list`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from baylink.cli_options import Broker, DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from domain.dataset import DatasetDefinition
from domain.errors import DomainError
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams.topic_admin import ensure_ingest_topic

dataset_app = typer.Typer(help="Register and list datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")


def read_definition(path: Path) -> DatasetDefinition:
    """A dataset definition from a YAML file; every problem is one clear line."""
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaylinkCliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaylinkCliError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BaylinkCliError(f"{path}: not valid YAML{where}") from None
    try:
        return DatasetDefinition.from_dict(document)
    except DomainError as error:
        raise BaylinkCliError(f"{path}: {error}") from None


@dataset_app.command("register")
def register_dataset(
    file: Annotated[Path, typer.Argument(help="Dataset definition (YAML).")],
    data_dir: DataDir = None,
    broker: Broker = None,
    event_store: EventStore = None,
) -> None:
    """Register a dataset (or a revision of it) and create its ingest topic."""
    definition = read_definition(file)
    context = resolve_context(data_dir, broker, event_store)
    catalog = Catalog(context.storage.event_store_url)
    try:
        changed = catalog.register(definition)
    except DomainError as error:
        raise BaylinkCliError(str(error)) from None
    finally:
        catalog.close()
    if context.has_broker:
        asyncio.run(ensure_ingest_topic(context.streams.bootstrap_servers, definition))
    verb = "registered" if changed else "already registered, unchanged:"
    typer.echo(
        f"{verb} {definition.id} ({definition.kind.value}, owner {definition.owner_region}, "
        f"classification {definition.classification.label}, topic {definition.ingest_topic})"
    )


@dataset_app.command("list")
def list_datasets(
    data_dir: DataDir = None, event_store: EventStore = None, as_json: Json = False
) -> None:
    """Every registered dataset with its accepted and rejected record counts."""
    context = resolve_context(data_dir, None, event_store)
    catalog = Catalog(context.storage.event_store_url)
    ledger = IngestLedger(context.storage.event_store_url)
    try:
        position = ledger.position()
        rows = []
        for definition in catalog.list():
            totals = ledger.totals(definition)
            rows.append(
                {
                    "id": definition.id,
                    "kind": definition.kind.value,
                    "owner_region": definition.owner_region,
                    "classification": definition.classification.label,
                    "accepted": totals.accepted,
                    "rejected": totals.rejected,
                    "position": position,
                }
            )
    finally:
        ledger.close()
        catalog.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=f"datasets (store position {position})")
    for column in ("id", "kind", "owner", "classification", "accepted", "rejected"):
        table.add_column(column, justify="right" if column in ("accepted", "rejected") else "left")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["kind"]),
            str(row["owner_region"]),
            str(row["classification"]),
            str(row["accepted"]),
            str(row["rejected"]),
        )
    Console().print(table)
