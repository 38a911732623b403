"""Where the event store and object store are; read from BAYLINK_STORAGE_* variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    """Event-store URL (sqlite:///PATH or postgresql://...) and object-store URL."""

    model_config = SettingsConfigDict(env_prefix="BAYLINK_STORAGE_", extra="ignore")

    event_store_url: str = "sqlite:///var/baylink/events.sqlite"
    object_store_url: str = "var/baylink/objects"
    snapshot_interval_seconds: float = 30.0
