"""Settings of the HTTP API, read from BAYLINK_API_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

JWT_ALGORITHMS = ("RS256", "ES256")
"""The only signature algorithms accepted on JWTs: asymmetric, so a token can never be
signed with what the server holds (no `none`, no HMAC with a public key)."""


class JwtIssuer(BaseModel):
    """One OAuth2 issuer whose client-credentials tokens the API accepts.

    Exactly one of ``public_key_file`` (a PEM file) and ``jwks_url`` gives its keys. The
    partner a token speaks for is read from ``partner_claim`` and must be registered.
    """

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    public_key_file: Path | None = None
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = JWT_ALGORITHMS
    partner_claim: str = "sub"
    leeway_seconds: int = Field(default=30, ge=0, le=300)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(algorithms) - set(JWT_ALGORITHMS))
        if unknown or not algorithms:
            raise ValueError(f"algorithms must be some of {', '.join(JWT_ALGORITHMS)}")
        return algorithms

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtIssuer:
        if (self.public_key_file is None) == (self.jwks_url is None):
            raise ValueError(f"issuer {self.issuer}: give exactly one of public_key_file, jwks_url")
        return self


class ApiSettings(BaseSettings):
    """Where the API listens, the stores it reads, and who may call it.

    The store URLs default to storage's own settings (BAYLINK_STORAGE_EVENT_STORE_URL and
    BAYLINK_STORAGE_OBJECT_STORE_URL), which `create_app` reads when these are left unset;
    set them here only to point one API at other stores (tests do).
    """

    model_config = SettingsConfigDict(
        env_prefix="BAYLINK_API_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    event_store_url: str | None = None
    object_store_url: str | None = None
    # A trace viewer's URL for one trace, e.g. "http://127.0.0.1:6006/traces/{trace_id}":
    # record provenance then links to the trace that carried the record.
    trace_url_template: str | None = None
    # The administrator's bearer token; BAYLINK_ADMIN_TOKEN is accepted as well.
    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "admin_token", "BAYLINK_API_ADMIN_TOKEN", "BAYLINK_ADMIN_TOKEN"
        ),
    )
    # "development" lets a placeholder admin token through; anything else refuses it.
    environment: str = Field(
        default="production", validation_alias=AliasChoices("environment", "BAYLINK_ENV")
    )
    # Keys each consumer's pseudonyms; when unset they are keyed from the admin token.
    pseudonym_secret: SecretStr | None = None
    # JSON list of issuers, e.g. [{"issuer": "...", "audience": "...", "jwks_url": "..."}].
    jwt_issuers: list[JwtIssuer] = Field(default_factory=list)
    # Per partner: a bucket of `rate_limit_burst` requests refilled at `rate_limit_per_second`.
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=0)
    # Evidence bundles served by GET /v1/audit/bundle: at most this many events (ADR 21).
    audit_bundle_max_events: int = Field(default=100_000, ge=1)
