"""How the streaming layer reaches Kafka; read from BAYLINK_STREAMS_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StreamsSettings(BaseSettings):
    """Broker bootstrap address, consumer group and batch sizes."""

    model_config = SettingsConfigDict(env_prefix="BAYLINK_STREAMS_", extra="ignore")

    broker: str = "127.0.0.1:9092"
    app_id: str = "baylink"
    # Faust makes a directory for local table state even when, as here, it keeps none; left
    # unset it would be ./baylink-data wherever the worker was started.
    state_dir: str | None = None
    # Set when the broker keeps topics in memory: see storage.ingestion.tracking_name.
    broker_epoch: str = ""
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    catalog_poll_seconds: float = Field(default=2.0, gt=0)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    # Messages buffered before one store transaction per partition, and how long to wait.
    take_messages: int = Field(default=64, ge=1, le=10_000)
    take_seconds: float = Field(default=0.05, gt=0)
    # Messages a worker holds unprocessed before it stops fetching: bounds its memory when
    # publishers outrun it (each message is a batch of up to batch_size records).
    buffer_messages: int = Field(default=128, ge=1, le=100_000)
    # Longest a fetch waits for records at the broker; see streams.kafka_transport.
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    # Processes that decode and validate messages while the worker stores what was read
    # before; 0 reads in the worker itself (ADR 6: worth it where cores are free).
    reader_processes: int = Field(default=0, ge=0, le=64)
    # With reader processes: messages of a partition stored in one transaction while the
    # readers read the next ones.
    store_messages: int = Field(default=8, ge=1, le=10_000)
    # A dead worker's partitions move after the session timeout; a joining worker waits up
    # to the rebalance timeout for the others, so both are kept short on one machine.
    session_timeout_seconds: float = Field(default=10.0, gt=0)
    rebalance_timeout_seconds: float = Field(default=5.0, gt=0)

    @property
    def broker_url(self) -> str:
        """Faust wants kafka:// URLs; a bare host:port list is accepted too."""
        hosts = [h.strip().removeprefix("kafka://") for h in self.broker.split(",") if h.strip()]
        return ";".join(f"kafka://{h}" for h in hosts)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(
            h.strip().removeprefix("kafka://") for h in self.broker.split(",") if h.strip()
        )
