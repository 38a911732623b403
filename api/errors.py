"""Every error the API answers with, as an RFC 9457 problem (application/problem+json).

Errors are mapped here and nowhere else: routes let storage's named errors rise, and each
becomes a problem whose ``detail`` says what was wrong and ``parameter`` names the
request parameter at fault.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import Problem, ProblemItem
from domain.errors import (
    AgreementExistsError,
    AgreementNotFoundError,
    AgreementStateError,
    ApiKeyNotFoundError,
    PartnerExistsError,
    PartnerNotFoundError,
    WhitelistRuleExistsError,
    WhitelistRuleNotFoundError,
)
from storage.errors import (
    BadCursorError,
    BadFilterError,
    LogPositionNotFoundError,
    QueryError,
    SnapshotUnavailableError,
    TreeHeadNotFoundError,
    UnknownDatasetError,
    UnknownRecordError,
    UnknownSnapshotError,
)
from storage.evidence_bundle import BundleRangeError

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:baylink:problem:"


class ApiError(Exception):
    """Base of the errors the API raises itself (storage raises the rest)."""

    def response_headers(self) -> dict[str, str] | None:
        return None


class AuthenticationError(ApiError):
    """No credential, or one that is not valid now."""

    def response_headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": 'Bearer realm="baylink"'}


class ForbiddenError(ApiError):
    """A valid credential without the scope the route needs."""


class RateLimitedError(ApiError):
    """The partner has used up its requests for now."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class NotAcceptableError(ApiError):
    """None of the media types the client accepts is one the API can send."""


class RejectedChangeError(ApiError):
    """The domain refuses a governance change (a rule, terms, a region); its message says why."""


class StoreUnavailableError(ApiError):
    """The event store or the object store cannot be opened."""


class UnknownSubscriptionError(ApiError):
    """No subscription with this id, or one the caller may not see: answered alike."""


class ConflictError(ApiError):
    """The request is well formed but conflicts with the current state."""


class ProblemResponse(JSONResponse):
    """A JSON response served as application/problem+json."""

    media_type = PROBLEM_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class _Kind:
    slug: str
    title: str
    status: int


# Most specific first: the first class an error is an instance of decides.
_KINDS: tuple[tuple[type[Exception], _Kind], ...] = (
    (UnknownDatasetError, _Kind("unknown-dataset", "Unknown dataset", 404)),
    (UnknownSnapshotError, _Kind("unknown-snapshot", "Unknown snapshot", 404)),
    (UnknownRecordError, _Kind("unknown-record", "Unknown record", 404)),
    (BadCursorError, _Kind("bad-cursor", "Bad cursor", 400)),
    (BadFilterError, _Kind("bad-filter", "Bad filter", 400)),
    (SnapshotUnavailableError, _Kind("snapshot-unavailable", "Snapshot unavailable", 503)),
    (NotAcceptableError, _Kind("not-acceptable", "Not acceptable", 406)),
    (AuthenticationError, _Kind("unauthenticated", "Unauthorized", 401)),
    (ForbiddenError, _Kind("forbidden", "Forbidden", 403)),
    (RateLimitedError, _Kind("rate-limited", "Too many requests", 429)),
    (StoreUnavailableError, _Kind("store-unavailable", "Store unavailable", 503)),
    (UnknownSubscriptionError, _Kind("unknown-subscription", "Unknown subscription", 404)),
    (ConflictError, _Kind("conflict", "Conflict", 409)),
    (QueryError, _Kind("bad-query", "Query cannot be answered", 400)),
    # The Merkle log: proofs are served only against signed heads and stored events.
    (TreeHeadNotFoundError, _Kind("unknown-tree-head", "Unknown tree head", 404)),
    (LogPositionNotFoundError, _Kind("unknown-log-position", "Unknown log position", 404)),
    (BundleRangeError, _Kind("bundle-range", "Range cannot be bundled", 422)),
    # Governance changes: the domain's own message says what was wrong.
    (AgreementNotFoundError, _Kind("unknown-agreement", "Unknown agreement", 404)),
    (PartnerNotFoundError, _Kind("unknown-partner", "Unknown partner", 404)),
    (ApiKeyNotFoundError, _Kind("unknown-api-key", "Unknown API key", 404)),
    (WhitelistRuleNotFoundError, _Kind("unknown-whitelist-rule", "Unknown whitelist rule", 404)),
    (PartnerExistsError, _Kind("already-exists", "Already exists", 409)),
    (AgreementExistsError, _Kind("already-exists", "Already exists", 409)),
    (WhitelistRuleExistsError, _Kind("already-exists", "Already exists", 409)),
    (AgreementStateError, _Kind("transition-not-allowed", "Transition not allowed", 409)),
    (RejectedChangeError, _Kind("rejected-change", "Change rejected", 422)),
)
_NAMED_DOMAIN_ERRORS = tuple(cls for cls, _ in _KINDS if not issubclass(cls, QueryError | ApiError))
_INVALID_REQUEST = _Kind("invalid-request", "Invalid request", 422)
_INTERNAL = _Kind("internal-error", "Internal error", 500)


def has_own_problem(error: Exception) -> bool:
    """Whether the error is answered with a problem of its own kind (else, from a governance
    change, it becomes a RejectedChangeError; anywhere else, an internal error)."""
    return isinstance(error, _NAMED_DOMAIN_ERRORS)


def problem_type(slug: str) -> str:
    return _TYPE_PREFIX + slug


def problem_response(
    kind: _Kind,
    detail: str,
    request: Request,
    *,
    parameter: str | None = None,
    errors: Sequence[ProblemItem] = (),
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    problem = Problem(
        type=problem_type(kind.slug),
        title=kind.title,
        status=kind.status,
        detail=detail,
        instance=request.url.path,
        parameter=parameter,
        errors=list(errors) or None,
    )
    return ProblemResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=kind.status,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, including FastAPI's own, with a problem document."""

    async def named_error(request: Request, error: Exception) -> ProblemResponse:
        kind = next(k for cls, k in _KINDS if isinstance(error, cls))
        parameter = error.parameter if isinstance(error, BadFilterError) else None
        headers = error.response_headers() if isinstance(error, ApiError) else None
        return problem_response(kind, str(error), request, parameter=parameter, headers=headers)

    async def invalid_request(request: Request, error: Exception) -> ProblemResponse:
        assert isinstance(error, RequestValidationError)
        items = [_item(e) for e in error.errors()]
        detail = "; ".join(f"{item.parameter}: {item.message}" for item in items)
        first = items[0].parameter if items else None
        return problem_response(
            _INVALID_REQUEST, detail or "invalid request", request, parameter=first, errors=items
        )

    async def http_error(request: Request, error: Exception) -> ProblemResponse:
        assert isinstance(error, StarletteHTTPException)
        if _is_unreadable_body(error):
            return problem_response(
                _INVALID_REQUEST,
                "body: cannot be read as JSON (UTF-8)",
                request,
                parameter="body",
                errors=[ProblemItem(parameter="body", location="body", message="not JSON")],
            )
        phrase = _phrase(error.status_code)
        kind = _Kind(phrase.lower().replace(" ", "-"), phrase, error.status_code)
        detail = error.detail if isinstance(error.detail, str) else phrase
        headers = dict(error.headers) if error.headers else None
        if error.status_code == 405:
            named = (headers or {}).get("Allow", "")
            headers = {**(headers or {}), "Allow": _allowed_methods(request, named)}
        return problem_response(kind, detail, request, headers=headers)

    async def unexpected(request: Request, _error: Exception) -> ProblemResponse:
        return problem_response(_INTERNAL, "the server failed to answer; see its log", request)

    app.add_exception_handler(QueryError, named_error)
    app.add_exception_handler(ApiError, named_error)
    for error_class in _NAMED_DOMAIN_ERRORS:
        app.add_exception_handler(error_class, named_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _is_unreadable_body(error: StarletteHTTPException) -> bool:
    """FastAPI's answer to a JSON body it cannot decode (bytes that are not UTF-8, say): a 400
    raised from the decoding error, where a body that is not JSON at all is a 422. Both are
    the same mistake to a client, and answered alike."""
    return (
        error.status_code == 400
        and error.__cause__ is not None
        and error.detail == "There was an error parsing the body"
    )


def _allowed_methods(request: Request, named: str) -> str:
    """Every method the API serves on the request's path: Starlette names (``named``) only
    those of the first route matching the path, where a path's GET and POST are separate
    routes. The others are read from the OpenAPI document, which lists every documented
    route's methods by path template."""
    methods = {m.strip() for m in named.split(",") if m.strip()}
    path = request.url.path
    for template, item in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in item if m in _HTTP_METHODS}
    return ", ".join(sorted(methods))


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _item(error: Any) -> ProblemItem:
    location = [str(part) for part in error.get("loc", ())]
    where = location[0] if location else "request"
    name = ".".join(location[1:]) or where
    return ProblemItem(parameter=name, location=where, message=str(error.get("msg", "")))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses (see api.openapi, which
    serves them as application/problem+json)."""
    return {status: {"model": Problem, "description": _phrase(status)} for status in statuses}
