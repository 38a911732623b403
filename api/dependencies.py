"""Every FastAPI dependency the routes use, as Annotated aliases."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from starlette.requests import HTTPConnection

from api.administration import AdministrationService
from api.auth import Authenticator, Principal
from api.enforcement import PolicyService
from api.errors import ApiError, AuthenticationError
from api.limits import RateLimiter
from api.media import RecordFormat, negotiate
from api.sealed_cursor import CursorSeal
from api.services import LedgerProvider, QueryServiceProvider
from storage.access_log import AccessLog
from storage.governance import Governance
from storage.query import BoundingBox, QueryService
from storage.tree_heads import TreeHeadLedger

DATASET_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$"
SNAPSHOT_ID_PATTERN = r"^[0-9]{12}-[0-9]{12}$"
RECORD_ID_PATTERN = r"^[0-9a-f]{32}$"
_NUMBER = r"-?[0-9]+(\.[0-9]+)?"
BBOX_PATTERN = rf"^{_NUMBER}(,{_NUMBER}){{3}}$"
FIELDS_PATTERN = r"^[a-z_][a-z0-9_]*(,[a-z_][a-z0-9_]*)*$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z0-9]+)*$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def _iso_date_time(value: object) -> object:
    """Refuse a number: pydantic would take it for Unix seconds, which the document's
    date-time format does not allow."""
    if isinstance(value, str) and re.fullmatch(_NUMBER, value.strip()):
        raise ValueError(f"{value!r} is not an ISO 8601 date-time, e.g. 2026-11-20T08:00:00Z")
    return value


def _query_service(request: Request) -> QueryService:
    provider = request.app.state.query_service
    assert isinstance(provider, QueryServiceProvider)
    return provider.get()


# Declares the bearer scheme in the OpenAPI document; the header itself is read below, so that
# every refusal is the API's own 401 problem.
_BEARER = HTTPBearer(auto_error=False, description="An API key, a partner JWT or the admin token.")


def authenticated(
    request: HTTPConnection,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    """The caller, once per request: 401 without a valid credential, 429 over the partner's
    rate. Both refusals are written to the access log."""
    state = request.app.state
    authenticator: Authenticator = state.authenticator
    limiter: RateLimiter = state.rate_limiter
    principal: Principal | None = None
    try:
        principal = authenticator.principal(request.headers.get("authorization"))
        if not principal.admin:
            limiter.take(principal.name)
    except ApiError as error:
        reason = "unauthenticated" if isinstance(error, AuthenticationError) else "rate-limited"
        access_log(request).record(
            None if principal is None else principal.caller,
            "authenticate",
            None,
            reason=f"{reason}: {error}",
            allowed=False,
        )
        raise
    return principal


def access_log(request: HTTPConnection) -> AccessLog:
    provider: LedgerProvider[AccessLog] = request.app.state.access_log
    return provider.get()


def _tree_heads(request: HTTPConnection) -> TreeHeadLedger:
    provider: LedgerProvider[TreeHeadLedger] = request.app.state.tree_heads
    return provider.get()


def _policy_service(
    request: Request, principal: Annotated[Principal, Depends(authenticated)]
) -> PolicyService:
    state = request.app.state
    query: QueryServiceProvider = state.query_service
    governance: LedgerProvider[Governance] = state.governance
    access_log: LedgerProvider[AccessLog] = state.access_log
    secret: bytes = state.pseudonym_secret
    seal: CursorSeal = state.cursor_seal
    return PolicyService(principal, query.get, governance.get, access_log.get, secret, seal)


def _administration(
    request: Request, principal: Annotated[Principal, Depends(authenticated)]
) -> AdministrationService:
    state = request.app.state
    query: QueryServiceProvider = state.query_service
    governance: LedgerProvider[Governance] = state.governance
    access_log: LedgerProvider[AccessLog] = state.access_log
    return AdministrationService(principal, governance.get, query.get, access_log.get)


def _bbox(
    bbox: Annotated[
        str | None,
        Query(
            description="Area as min_lon,min_lat,max_lon,max_lat in WGS-84 degrees, edges "
            "included, e.g. 113.9,22.2,114.0,22.3: records whose point lies in it or whose "
            "geometry intersects it. Where your agreement coarsens the location, the box is "
            "matched against the location you receive (the cell's centre); where it withholds "
            "the location, there is no box filter.",
            pattern=BBOX_PATTERN,
            examples=["113.9,22.2,114.0,22.3"],
        ),
    ] = None,
) -> BoundingBox | None:
    return BoundingBox.parse(bbox) if bbox is not None else None


def _fields(
    fields: Annotated[
        str | None,
        Query(
            description="Comma-separated columns to return; record_id is always included.",
            pattern=FIELDS_PATTERN,
            examples=["observed_at,speed"],
        ),
    ] = None,
) -> tuple[str, ...] | None:
    if fields is None:
        return None
    return tuple(name.strip() for name in fields.split(",") if name.strip())


def _record_format(
    format: Annotated[
        RecordFormat | None,
        Query(description="Response format; overrides the Accept header."),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> RecordFormat:
    return negotiate(format, accept)


QueryServiceDep = Annotated[QueryService, Depends(_query_service)]
PrincipalDep = Annotated[Principal, Depends(authenticated)]
PolicyDep = Annotated[PolicyService, Depends(_policy_service)]
TreeHeadsDep = Annotated[TreeHeadLedger, Depends(_tree_heads)]
AdministrationDep = Annotated[AdministrationService, Depends(_administration)]
StartParam = Annotated[
    datetime | None,
    BeforeValidator(_iso_date_time),
    Query(description="Earliest time (inclusive), ISO 8601 with a UTC offset."),
]
EndParam = Annotated[
    datetime | None,
    BeforeValidator(_iso_date_time),
    Query(description="Latest time (exclusive), ISO 8601 with a UTC offset."),
]
SinceParam = Annotated[
    datetime | None,
    BeforeValidator(_iso_date_time),
    Query(description="Earliest time (inclusive), ISO 8601 with a UTC offset."),
]
UntilParam = Annotated[
    datetime | None,
    BeforeValidator(_iso_date_time),
    Query(description="Latest time (exclusive), ISO 8601 with a UTC offset."),
]
BoundingBoxParam = Annotated[BoundingBox | None, Depends(_bbox)]
FieldsParam = Annotated[tuple[str, ...] | None, Depends(_fields)]
RecordFormatParam = Annotated[RecordFormat, Depends(_record_format)]
DatasetId = Annotated[
    str,
    Path(
        max_length=120,
        pattern=DATASET_ID_PATTERN,
        description="Dotted lower-case id, e.g. gba.traffic.sensor-readings.",
    ),
]
SnapshotId = Annotated[
    str,
    Path(
        pattern=SNAPSHOT_ID_PATTERN, description="<first position>-<last position>, 12 digits each."
    ),
]
RecordId = Annotated[str, Path(pattern=RECORD_ID_PATTERN, description="32 lower-case hex digits.")]
