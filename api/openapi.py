"""The OpenAPI document, with every error response served as application/problem+json and
links from each read to the reads its answer leads to."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_MEDIA_TYPE

DATASETS = "/v1/datasets"
DATASET = "/v1/datasets/{dataset_id}"
RECORDS = "/v1/datasets/{dataset_id}/records"
AGGREGATE = "/v1/datasets/{dataset_id}/aggregate"
SNAPSHOTS = "/v1/datasets/{dataset_id}/snapshots"
SNAPSHOT = "/v1/snapshots/{dataset_id}/{snapshot_id}"
PROVENANCE = "/v1/records/{record_id}/provenance"


def _dataset_links(dataset_id: str) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "GetDatasetRecords": (RECORDS, {"dataset_id": dataset_id}),
        "GetDatasetAggregate": (AGGREGATE, {"dataset_id": dataset_id}),
        "ListDatasetSnapshots": (SNAPSHOTS, {"dataset_id": dataset_id}),
    }


# From each GET operation's 200 answer: link name -> (target GET path, its parameters as
# OpenAPI runtime expressions). The first item of a list leads on; an empty list leads nowhere.
LINKS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    DATASETS: {
        "GetDataset": (DATASET, {"dataset_id": "$response.body#/datasets/0/id"}),
        **_dataset_links("$response.body#/datasets/0/id"),
    },
    DATASET: _dataset_links("$response.body#/id"),
    RECORDS: {
        "GetRecordProvenance": (
            PROVENANCE,
            {"record_id": "$response.body#/records/0/record_id"},
        ),
    },
    SNAPSHOTS: {
        "GetSnapshot": (
            SNAPSHOT,
            {
                "dataset_id": "$response.body#/dataset_id",
                "snapshot_id": "$response.body#/snapshots/0/snapshot_id",
            },
        ),
    },
}


def install_openapi(app: FastAPI) -> None:
    """Replace the app's OpenAPI builder with one that declares problem+json for errors and
    links between the read operations."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _problems_as_problem_json(document)
            _add_links(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problems_as_problem_json(document: dict[str, Any]) -> None:
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith(("4", "5")):
                    continue
                content = response.get("content", {})
                if "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")


def _add_links(document: dict[str, Any]) -> None:
    """Links name their target by operationId, read from the document: a renamed route keeps
    its links, a removed one fails here rather than in a client."""
    paths = document["paths"]
    for source, links in LINKS.items():
        answer = paths[source]["get"]["responses"]["200"]
        answer["links"] = {
            name: {"operationId": paths[target]["get"]["operationId"], "parameters": parameters}
            for name, (target, parameters) in links.items()
        }
