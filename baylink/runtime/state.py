"""What a running `baylink up` publishes about itself: <data-dir>/runtime.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from baylink.runtime.errors import RuntimeStateCorruptError, RuntimeStateNotFoundError

DATA_DIR_ENV = "BAYLINK_DATA_DIR"
DEFAULT_DATA_DIR = Path("var/baylink")
STATE_FILE_NAME = "runtime.json"


def resolve_data_dir(option: Path | None = None) -> Path:
    """The data directory: the given option, else $BAYLINK_DATA_DIR, else ./var/baylink."""
    if option is not None:
        chosen = option
    elif os.environ.get(DATA_DIR_ENV):
        chosen = Path(os.environ[DATA_DIR_ENV])
    else:
        chosen = DEFAULT_DATA_DIR
    # Absolute, because the path is handed to children that may run elsewhere.
    return chosen.expanduser().resolve()


def state_path(data_dir: Path) -> Path:
    """Where the runtime state of `data_dir` is kept."""
    return data_dir / STATE_FILE_NAME


@dataclass(frozen=True)
class RuntimeState:
    """Addresses and process ids of one running `baylink up`."""

    broker_bootstrap: str
    event_store_url: str
    object_store_url: str
    api_url: str
    broker_epoch: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    # Component -> URL of its metrics as Prometheus text.
    metrics_urls: dict[str, str] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def write(self, data_dir: Path) -> Path:
        """Persist atomically, so readers never see a half-written file; return its path."""
        path = state_path(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = asdict(self) | {"started_at": self.started_at.isoformat()}
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        temporary.replace(path)
        return path

    @classmethod
    def read(cls, data_dir: Path) -> Self:
        """Load the state of `data_dir`, or raise a one-line error saying what is wrong."""
        path = state_path(data_dir)
        try:
            document: Any = json.loads(path.read_text())
        except FileNotFoundError:
            raise RuntimeStateNotFoundError(
                f"no running baylink found: {path} does not exist (start one with `baylink up`)"
            ) from None
        except (OSError, ValueError) as error:
            raise RuntimeStateCorruptError(f"cannot read {path}: {error}") from None
        try:
            return cls(
                broker_bootstrap=str(document["broker_bootstrap"]),
                event_store_url=str(document["event_store_url"]),
                object_store_url=str(document["object_store_url"]),
                api_url=str(document["api_url"]),
                broker_epoch=str(document.get("broker_epoch", "")),
                pids={str(name): int(pid) for name, pid in document["pids"].items()},
                metrics_urls={
                    str(name): str(url) for name, url in document.get("metrics_urls", {}).items()
                },
                started_at=datetime.fromisoformat(document["started_at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RuntimeStateCorruptError(
                f"{path} is not a baylink runtime state ({type(error).__name__}: {error})"
            ) from None

    @staticmethod
    def remove(data_dir: Path) -> None:
        """Delete the state file of `data_dir`, if present."""
        state_path(data_dir).unlink(missing_ok=True)
