"""The eventsourcing applications that share one event store and one notification log."""

from __future__ import annotations

import time
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InternalError,
    OperationalError,
    ProcessRecorder,
)

from storage.event_store import APPLICATION_NAME, environment_for
from storage.recorders import PostgresLedgerRecorder, SQLiteLedgerRecorder

LedgerRecorder = SQLiteLedgerRecorder | PostgresLedgerRecorder
_CREATE_ATTEMPTS = 5


class LedgerApplication(Application[UUID]):
    """Base of baylink's applications: one store, process recorder, msgpack state."""

    name = APPLICATION_NAME
    is_snapshotting_enabled = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # eventsourcing names each subclass after itself, and PostgreSQL table names follow
        # the name: every baylink application must share one set of tables and one log.
        super().__init_subclass__(**kwargs)
        cls.name = APPLICATION_NAME

    def __init__(self, event_store_url: str, **extra_env: Any) -> None:
        env = {**environment_for(event_store_url), **extra_env}
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                super().__init__(env=env)
                break
            except (InternalError, IntegrityError, OperationalError):
                # Processes starting together race on PostgreSQL's CREATE ... IF NOT EXISTS
                # ("tuple concurrently updated"); the tables exist once one of them wins.
                factory = getattr(self, "factory", None)
                if factory is not None:
                    factory.close()
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        self.event_store_url = event_store_url

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def ledger(self) -> LedgerRecorder:
        return cast(LedgerRecorder, self.recorder)

    def position(self) -> int:
        """The newest notification id in the store (0 when empty)."""
        return self.recorder.max_notification_id() or 0
