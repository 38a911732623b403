"""The OpenAPI document, with every error response served as application/problem+json and
links from each answer to the operations its values lead to."""

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
AGREEMENTS = "/v1/agreements"
AGREEMENT = "/v1/agreements/{agreement_id}"
PARTNERS = "/v1/partners"
PARTNER = "/v1/partners/{partner_id}"
KEYS = "/v1/partners/{partner_id}/keys"
KEY_REVOKE = "/v1/partners/{partner_id}/keys/{key_id}/revoke"
WHITELIST = "/v1/whitelist"
RULES = "/v1/whitelist/rules"
RULE_WITHDRAW = "/v1/whitelist/rules/{rule_id}/withdraw"

Operation = tuple[str, str]  # (METHOD, path template)
# A source: an operation's answer of one status.
Answer = tuple[str, str, str]  # (METHOD, path template, status)
# Link name -> (target operation, its parameters as OpenAPI runtime expressions).
Links = dict[str, tuple[Operation, dict[str, str]]]


def _get(path: str) -> Operation:
    return ("GET", path)


def _post(path: str) -> Operation:
    return ("POST", path)


def _dataset_links(dataset_id: str) -> Links:
    return {
        "GetDatasetRecords": (_get(RECORDS), {"dataset_id": dataset_id}),
        "GetDatasetAggregate": (_get(AGGREGATE), {"dataset_id": dataset_id}),
        "ListDatasetSnapshots": (_get(SNAPSHOTS), {"dataset_id": dataset_id}),
    }


# An agreement's lifecycle: which transitions may follow each answer (revoke ends any state).
_NEXT: dict[str, tuple[str, ...]] = {
    "propose": ("approve", "revoke"),
    "approve": ("accept", "revoke"),
    "accept": ("activate", "revoke"),
    "activate": ("suspend", "revoke"),
    "suspend": ("resume", "revoke"),
    "resume": ("suspend", "revoke"),
    "revoke": (),
}


def _transition(name: str) -> Operation:
    return _post(f"{AGREEMENT}/{name}")


def _agreement_links(agreement_id: str, transitions: tuple[str, ...], *, get: bool = True) -> Links:
    parameters = {"agreement_id": agreement_id}
    links: Links = {"GetAgreement": (_get(AGREEMENT), parameters)} if get else {}
    for name in transitions:
        links[f"{name.capitalize()}Agreement"] = (_transition(name), parameters)
    return links


def _revoke_key(partner_id: str, key_id: str) -> Links:
    return {"RevokeKey": (_post(KEY_REVOKE), {"partner_id": partner_id, "key_id": key_id})}


# From each operation's answer to the operations its values lead to: the first item of a list
# leads on, an empty list leads nowhere. Writes lead to what they made: a proposed agreement to
# its transitions in lifecycle order, a partner to its keys, a rule to its withdrawal.
LINKS: dict[Answer, Links] = {
    ("GET", DATASETS, "200"): {
        "GetDataset": (_get(DATASET), {"dataset_id": "$response.body#/datasets/0/id"}),
        **_dataset_links("$response.body#/datasets/0/id"),
    },
    ("GET", DATASET, "200"): _dataset_links("$response.body#/id"),
    ("GET", RECORDS, "200"): {
        "GetRecordProvenance": (
            _get(PROVENANCE),
            {"record_id": "$response.body#/records/0/record_id"},
        ),
    },
    ("GET", SNAPSHOTS, "200"): {
        "GetSnapshot": (
            _get(SNAPSHOT),
            {
                "dataset_id": "$response.body#/dataset_id",
                "snapshot_id": "$response.body#/snapshots/0/snapshot_id",
            },
        ),
    },
    ("GET", AGREEMENTS, "200"): _agreement_links("$response.body#/agreements/0/agreement_id", ()),
    ("GET", AGREEMENT, "200"): _agreement_links(
        "$response.body#/agreement_id", tuple(t for t in _NEXT if t != "propose"), get=False
    ),
    ("POST", AGREEMENTS, "201"): _agreement_links("$response.body#/agreement_id", _NEXT["propose"]),
    **{
        ("POST", f"{AGREEMENT}/{name}", "200"): _agreement_links(
            "$response.body#/agreement_id", following
        )
        for name, following in _NEXT.items()
        if name != "propose"
    },
    ("GET", PARTNERS, "200"): {
        "GetPartner": (_get(PARTNER), {"partner_id": "$response.body#/partners/0/partner_id"}),
    },
    ("POST", PARTNERS, "201"): {
        "GetPartner": (_get(PARTNER), {"partner_id": "$response.body#/partner/partner_id"}),
        "IssueKey": (_post(KEYS), {"partner_id": "$response.body#/partner/partner_id"}),
        **_revoke_key("$response.body#/partner/partner_id", "$response.body#/api_key/key_id"),
    },
    ("POST", KEYS, "201"): {
        "GetPartner": (_get(PARTNER), {"partner_id": "$response.body#/partner_id"}),
        **_revoke_key("$response.body#/partner_id", "$response.body#/key_id"),
    },
    ("POST", KEY_REVOKE, "200"): {
        "GetPartner": (_get(PARTNER), {"partner_id": "$response.body#/partner_id"}),
    },
    ("POST", RULES, "201"): {
        "WithdrawRule": (_post(RULE_WITHDRAW), {"rule_id": "$response.body#/rule_id"}),
    },
}


def install_openapi(app: FastAPI) -> None:
    """Replace the app's OpenAPI builder with one that declares problem+json for errors and
    links between operations."""

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
    for (method, path, status), links in LINKS.items():
        answer = paths[path][method.lower()]["responses"][status]
        answer["links"] = {
            name: {
                "operationId": paths[target][target_method.lower()]["operationId"],
                "parameters": parameters,
            }
            for name, ((target_method, target), parameters) in links.items()
        }
