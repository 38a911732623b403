"""Where the event store and object store are; read from BAYLINK_STORAGE_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    """Event-store URL (sqlite:///PATH or postgresql://...), object-store URL, and how the
    Merkle log's tree heads are signed and how often."""

    model_config = SettingsConfigDict(env_prefix="BAYLINK_STORAGE_", extra="ignore")

    event_store_url: str = "sqlite:///var/baylink/events.sqlite"
    object_store_url: str = "var/baylink/objects"
    snapshot_interval_seconds: float = 30.0
    # The node's Ed25519 key (PEM) that signs Merkle tree heads; no heads are recorded without
    # one. `baylink up` makes one in its data directory.
    tree_head_key_file: str | None = None
    tree_head_every_events: int = Field(default=1000, ge=1)
    tree_head_every_seconds: float = Field(default=60.0, gt=0)
    # An RFC 3161 TSA (http(s) URL) that timestamps each signed head; heads are recorded
    # without a timestamp while it fails. The CA file (PEM), when set, is what its tokens must
    # chain to, checked as each token arrives.
    tree_head_tsa_url: str | None = None
    tree_head_tsa_ca_file: str | None = None
    tree_head_tsa_timeout_seconds: float = Field(default=10.0, gt=0)
