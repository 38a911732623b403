"""The ``baylink`` command line: each group of commands lives in a module of its own."""

from __future__ import annotations

import sys

import typer

from baylink import (
    cli_audit,
    cli_connector,
    cli_dataset,
    cli_delivery,
    cli_demo,
    cli_governance,
    cli_ingest,
    cli_runtime,
    cli_snapshots,
    cli_status,
)
from baylink.errors import BaylinkCliError
from baylink.runtime.parent_watch import watch_supervisor

app = typer.Typer(
    name="baylink",
    help="Cross-border smart-city data sharing with verifiable history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cli_runtime.register(app)
cli_ingest.register(app)
cli_dataset.register(app)
cli_snapshots.register(app)
cli_demo.register(app)
cli_status.register(app)
cli_governance.register(app)
cli_connector.register(app)
cli_delivery.register(app)
cli_audit.register(app)


def main() -> None:
    """Run the command line; any baylink error becomes one clear line and exit status 2."""
    watch_supervisor()
    try:
        app()
    except BaylinkCliError as error:
        print(f"baylink: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
