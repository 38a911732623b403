"""Settings of the HTTP API, read from BAYLINK_API_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where the API listens, and the stores it reads.

    The store URLs default to storage's own settings (BAYLINK_STORAGE_EVENT_STORE_URL and
    BAYLINK_STORAGE_OBJECT_STORE_URL), which `create_app` reads when these are left unset;
    set them here only to point one API at other stores (tests do).
    """

    model_config = SettingsConfigDict(env_prefix="BAYLINK_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    event_store_url: str | None = None
    object_store_url: str | None = None
    # A trace viewer's URL for one trace, e.g. "http://127.0.0.1:6006/traces/{trace_id}":
    # record provenance then links to the trace that carried the record.
    trace_url_template: str | None = None
