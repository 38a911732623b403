"""Finding the platform a command acts on: flags, then BAYLINK_* variables, then the
runtime.json that `baylink up` wrote in the data directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from baylink.errors import BaylinkCliError
from baylink.runtime.state import RuntimeState, resolve_data_dir, state_path
from storage.settings import StorageSettings
from streams.settings import StreamsSettings


@dataclass(frozen=True)
class PlatformContext:
    """Settings of the packages, resolved for one command."""

    data_dir: Path
    streams: StreamsSettings
    storage: StorageSettings
    has_broker: bool

    @property
    def object_store_url(self) -> str:
        """The platform's object store, else the objects/ folder of the data dir."""
        return (
            os.environ.get("BAYLINK_STORAGE_OBJECT_STORE_URL")
            or (self.data_dir / "objects").as_uri()
        )


def resolve_context(
    data_dir: Path | None = None,
    broker: str | None = None,
    event_store: str | None = None,
    *,
    need_broker: bool = False,
) -> PlatformContext:
    directory = resolve_data_dir(data_dir)
    state = RuntimeState.read(directory) if state_path(directory).exists() else None
    broker = (
        broker
        or os.environ.get("BAYLINK_STREAMS_BROKER")
        or (state.broker_bootstrap if state else None)
    )
    if need_broker and not broker:
        raise BaylinkCliError(
            f"no broker to publish to: no baylink is running from {directory} "
            "(start one with `baylink up`, or pass --broker / set BAYLINK_STREAMS_BROKER)"
        )
    event_store = (
        event_store
        or os.environ.get("BAYLINK_STORAGE_EVENT_STORE_URL")
        or (state.event_store_url if state else None)
        or f"sqlite:///{directory / 'events.sqlite'}"
    )
    epoch = os.environ.get("BAYLINK_STREAMS_BROKER_EPOCH") or (state.broker_epoch if state else "")
    streams = StreamsSettings(broker_epoch=epoch)
    if streams.state_dir is None:
        streams = streams.model_copy(update={"state_dir": str(directory / "worker-state")})
    if broker:
        streams = streams.model_copy(update={"broker": broker})
    object_store = (
        os.environ.get("BAYLINK_STORAGE_OBJECT_STORE_URL")
        or (state.object_store_url if state else None)
        or (directory / "objects").as_uri()
    )
    storage = StorageSettings(event_store_url=event_store, object_store_url=object_store)
    return PlatformContext(directory, streams, storage, has_broker=bool(broker))
