"""Every bad request is answered with a 4xx problem document that names what was wrong."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

DATASET = "gba.traffic.sensor-readings"
RECORDS = f"/v1/datasets/{DATASET}/records"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class BadRequest:
    """A request, and the problem it must be answered with."""

    path: str
    params: dict[str, Any]
    status: int
    kind: str
    parameter: str | None
    words: str
    headers: dict[str, str] = field(default_factory=dict)


def cursor_of(body: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def records(
    params: dict[str, Any], status: int, kind: str, parameter: str, words: str
) -> BadRequest:
    return BadRequest(RECORDS, params, status, kind, parameter, words)


BAD_REQUESTS = {
    "unknown dataset": BadRequest(
        "/v1/datasets/gba.nothing.here/records",
        {},
        404,
        "unknown-dataset",
        None,
        "gba.nothing.here",
    ),
    "unknown dataset described": BadRequest(
        "/v1/datasets/gba.nothing.here", {}, 404, "unknown-dataset", None, "gba.nothing.here"
    ),
    "malformed dataset id": BadRequest(
        "/v1/datasets/NOT_AN_ID", {}, 422, "invalid-request", "dataset_id", "dataset_id"
    ),
    "bbox with three edges": records(
        {"bbox": "113.9,22.2,114.0"}, 422, "invalid-request", "bbox", "bbox"
    ),
    "bbox that is not numbers": records(
        {"bbox": "a,b,c,d"}, 422, "invalid-request", "bbox", "bbox"
    ),
    "bbox whose west edge is east of its east edge": records(
        {"bbox": "114.0,22.2,113.9,22.3"}, 400, "bad-filter", "bbox", "min_lon"
    ),
    "bbox beyond a pole": records(
        {"bbox": "113,-91,114,22"}, 400, "bad-filter", "bbox", "latitudes"
    ),
    "end before start": records(
        {"start": "2026-11-22T00:00:00Z", "end": "2026-11-21T00:00:00Z"},
        400,
        "bad-filter",
        "end",
        "not after start",
    ),
    "start without a UTC offset": records(
        {"start": "2026-11-22T00:00:00"}, 400, "bad-filter", "start", "UTC offset"
    ),
    "start that is not a time": records(
        {"start": "yesterday"}, 422, "invalid-request", "start", "start"
    ),
    # A number would otherwise be read as Unix seconds, a date-time the document does not allow.
    "start that is a number": records(
        {"start": "0.5"}, 422, "invalid-request", "start", "ISO 8601"
    ),
    "end that is a number": records(
        {"end": "1700000000"}, 422, "invalid-request", "end", "ISO 8601"
    ),
    "unknown field": records({"fields": "speed,colour"}, 400, "bad-filter", "fields", "colour"),
    "unknown region": records({"region": "xx-atlantis"}, 400, "bad-filter", "region", "atlantis"),
    "region that is no region code": records(
        {"region": "Atlantis"}, 422, "invalid-request", "region", "region"
    ),
    "limit over the cap": records({"limit": 10_001}, 422, "invalid-request", "limit", "10000"),
    "limit of zero": records({"limit": 0}, 422, "invalid-request", "limit", "limit"),
    "cursor with characters no cursor has": records(
        {"cursor": "not a cursor!"}, 422, "invalid-request", "cursor", "cursor"
    ),
    "cursor of a time no clock shows": records(
        {"cursor": cursor_of({"v": 1, "t": 10**30, "id": "0" * 32, "f": "0" * 16})},
        400,
        "bad-cursor",
        "cursor",
        "cursor",
    ),
    "start before year 1": records(
        {"start": "0001-01-01T00:00:00+05:00"}, 400, "bad-filter", "start", "year 1"
    ),
    "cursor this API never issued": records(
        {"cursor": "bm90LWEtY3Vyc29y"}, 400, "bad-cursor", "cursor", "cursor"
    ),
    "unknown format": records({"format": "xml"}, 422, "invalid-request", "format", "format"),
    "unacceptable media type": BadRequest(
        RECORDS, {}, 406, "not-acceptable", None, "image/png", {"Accept": "image/png"}
    ),
    "unknown snapshot": BadRequest(
        f"/v1/snapshots/{DATASET}/000000000001-000000000002",
        {},
        404,
        "unknown-snapshot",
        None,
        "000000000001-000000000002",
    ),
    "malformed snapshot id": BadRequest(
        f"/v1/snapshots/{DATASET}/latest", {}, 422, "invalid-request", "snapshot_id", "snapshot_id"
    ),
    "unknown record": BadRequest(
        "/v1/records/0123456789abcdef0123456789abcdef/provenance",
        {},
        404,
        "unknown-record",
        None,
        "0123456789abcdef0123456789abcdef",
    ),
    "malformed record id": BadRequest(
        "/v1/records/xyz/provenance", {}, 422, "invalid-request", "record_id", "record_id"
    ),
    "unknown path": BadRequest("/v1/nowhere", {}, 404, "not-found", None, "Not Found"),
}


@pytest.mark.parametrize("bad", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_a_bad_request_is_a_problem_naming_what_was_wrong(
    api: httpx.AsyncClient, bad: BadRequest
) -> None:
    response = await api.get(bad.path, params=bad.params, headers=bad.headers)

    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == f"urn:baylink:problem:{bad.kind}"
    assert problem["status"] == bad.status
    assert problem["title"]
    assert problem.get("parameter") == bad.parameter
    assert bad.words in problem["detail"]


async def test_a_cursor_cannot_be_reused_with_other_filters(api: httpx.AsyncClient) -> None:
    first = (await api.get(RECORDS, params={"region": "hk", "limit": 10})).json()

    response = await api.get(
        RECORDS, params={"region": "mo", "limit": 10, "cursor": first["next_cursor"]}
    )

    assert response.status_code == 400
    problem = response.json()
    assert (problem["parameter"], problem["type"]) == ("cursor", "urn:baylink:problem:bad-cursor")
    assert "other filters" in problem["detail"]


async def test_a_cursor_of_an_unfiltered_query_is_refused_for_a_time_range(
    api: httpx.AsyncClient,
) -> None:
    first = (await api.get(RECORDS, params={"limit": 10})).json()

    response = await api.get(
        RECORDS,
        params={"limit": 10, "start": "2026-11-22T00:00:00Z", "cursor": first["next_cursor"]},
    )

    assert response.status_code == 400
    assert response.json()["parameter"] == "cursor"


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\xfa not UTF-8", b'{"agreement_id": "\xe9"}', b"[" * 20_000],
    ids=["bytes of no encoding", "latin-1 text", "nested deeper than a parser goes"],
)
async def test_a_body_that_cannot_be_read_as_json_is_an_invalid_request_naming_the_body(
    api: httpx.AsyncClient, body: bytes
) -> None:
    response = await api.post(
        "/v1/agreements", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:baylink:problem:invalid-request"
    assert problem["parameter"] == "body"
    assert "JSON" in problem["detail"]


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/v1/agreements", "OPTIONS", "GET, POST"),
        ("/v1/agreements", "DELETE", "GET, POST"),
        ("/v1/agreements/sz-hk-traffic", "PUT", "GET"),
        ("/v1/agreements/sz-hk-traffic/approve", "GET", "POST"),
    ],
)
async def test_a_method_not_allowed_names_every_method_the_path_serves(
    api: httpx.AsyncClient, path: str, method: str, allowed: str
) -> None:
    response = await api.request(method, path)

    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:baylink:problem:method-not-allowed"
