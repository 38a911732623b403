"""Errors are answered as problem documents, and the OpenAPI document says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from api.settings import ApiSettings
from tests.support.credentials import ADMIN, ADMIN_TOKEN

PROBLEM = "application/problem+json"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    # No request below reaches the stores, so nothing is opened.
    return create_app(
        ApiSettings(
            event_store_url=f"sqlite:///{tmp_path / 'events.sqlite'}",
            object_store_url=str(tmp_path / "objects"),
            admin_token=SecretStr(ADMIN_TOKEN),
        )
    )


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://baylink", headers=ADMIN
    ) as client:
        yield client


async def test_building_the_app_opens_no_store(app: FastAPI, tmp_path: Path) -> None:
    assert not (tmp_path / "events.sqlite").exists()
    assert not (tmp_path / "objects").exists()


async def test_a_request_validation_error_is_a_problem_naming_each_parameter(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    response = await api.get(
        "/v1/datasets/gba.traffic.readings/records", params={"limit": "many", "format": "xml"}
    )

    assert response.status_code == 422
    assert not (tmp_path / "events.sqlite").exists()
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:baylink:problem:invalid-request"
    assert problem["instance"] == "/v1/datasets/gba.traffic.readings/records"
    assert {item["parameter"] for item in problem["errors"]} == {"limit", "format"}
    assert "limit" in problem["detail"]
    assert "format" in problem["detail"]


async def test_an_unknown_path_and_method_are_problems(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v2/datasets")
    wrong_method = await api.post("/v1/datasets")

    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    assert (wrong_method.status_code, wrong_method.headers["content-type"]) == (405, PROBLEM)
    assert wrong_method.json()["title"] == "Method Not Allowed"


def error_responses(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, status, response)
        for path, item in document["paths"].items()
        for operation in item.values()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    ]


def test_every_error_response_of_the_openapi_document_is_problem_json(app: FastAPI) -> None:
    document = app.openapi()

    errors = error_responses(document)

    assert errors
    for path, status, response in errors:
        assert list(response["content"]) == [PROBLEM], (path, status)
        assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_records_operation_declares_every_format_and_its_paging_headers(
    app: FastAPI,
) -> None:
    operation = app.openapi()["paths"]["/v1/datasets/{dataset_id}/records"]["get"]

    ok = operation["responses"]["200"]
    assert set(ok["content"]) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.parquet",
    }
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecordsPage"
    }
    assert set(ok["headers"]) == {"Baylink-Next-Cursor", "Baylink-Current-To-Position"}
    assert {p["name"] for p in operation["parameters"]} == {
        "dataset_id",
        "start",
        "end",
        "region",
        "bbox",
        "fields",
        "limit",
        "cursor",
        "format",
    }
    assert set(operation["responses"]) == {
        "200", "400", "401", "404", "406", "422", "429", "503",
    }  # fmt: skip


async def test_a_store_that_cannot_be_opened_is_a_problem_that_keeps_its_url_private(
    tmp_path: Path,
) -> None:
    app = create_app(
        ApiSettings(
            event_store_url="postgresql://baylink:s3cret@/nowhere",
            object_store_url=str(tmp_path / "objects"),
            admin_token=SecretStr(ADMIN_TOKEN),
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://baylink", headers=ADMIN
    ) as api:
        response = await api.get("/v1/datasets")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:baylink:problem:store-unavailable"
    assert "s3cret" not in response.text
