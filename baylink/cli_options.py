"""Options shared by the commands that act on a platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from baylink.runtime.state import DATA_DIR_ENV

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Data directory of a running `baylink up`. [default: ./var/baylink]",
        show_default=False,
    ),
]
Broker = Annotated[
    str | None,
    typer.Option(
        metavar="BOOTSTRAP",
        help="Kafka bootstrap servers. [default: the running platform's broker]",
        show_default=False,
    ),
]
EventStore = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="sqlite:///PATH or postgresql://... [default: the running platform's store]",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
