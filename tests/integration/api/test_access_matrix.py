"""A generated matrix of requests by three partners in CN, HK and MO: no answer holds a row or
a field beyond the partner's grant (checked against the grants written out in
tests/integration/api/governed.py, not against the policy code), every allowed page is the
grant's rows in order, and whatever a partner may not see answers exactly as what does not
exist."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import ServedGoverned, bearer
from tests.integration.api.governed import (
    DATASETS,
    GRANTS,
    PARTNERS,
    START,
    GovernedStore,
    Grant,
    expected_ids,
)
from tests.integration.api.readings import Reading

pytestmark = pytest.mark.integration

REQUESTS = 10_000
MISSING = "xx.traffic.readings"
SYSTEM = frozenset({"record_id", "region"})
ALL_FIELDS = sorted(DATASETS[next(iter(DATASETS))].field_names)
REGIONS = ("hk", "gd-shenzhen", "mo")
KINDS = ["records"] * 10 + ["aggregate"] * 3 + ["provenance"] * 3 + ["detail", "snapshots"]
KINDS += ["catalog"]
_HEX = re.compile(r"^[0-9a-f]{32}$")


def _paths(kind: str, dataset_id: str) -> str:
    return {
        "records": f"/v1/datasets/{dataset_id}/records",
        "aggregate": f"/v1/datasets/{dataset_id}/aggregate",
        "detail": f"/v1/datasets/{dataset_id}",
        "snapshots": f"/v1/datasets/{dataset_id}/snapshots",
    }[kind]


def _moment(rng: random.Random) -> str:
    if rng.random() < 0.2:  # on the hour, as a grant coarsening times to the hour allows
        return (START + timedelta(hours=rng.choice([-1, 0, 1]))).isoformat()
    return (START + timedelta(seconds=rng.randrange(-60, 1300))).isoformat()


def _filters(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if rng.random() < 0.3:
        params["region"] = rng.choice(REGIONS)
    if rng.random() < 0.25:
        params["start"] = _moment(rng)
    if rng.random() < 0.25:
        params["end"] = _moment(rng)
        if "start" in params and params["end"] <= params["start"]:
            del params["end"]
    if rng.random() < 0.2:
        west, south = 113.9 + rng.random() * 0.04, 22.2 + rng.random() * 0.08
        params["bbox"] = f"{west:.3f},{south:.3f},{west + 0.02:.3f},{south + 0.04:.3f}"
    return params


def _filter_refused(grant: Grant, params: dict[str, Any]) -> bool:
    """Filters that would tell more than the grant: a time bound inside the hour its times
    are coarsened to, or a box where the location is not shared."""
    off_the_hour = any(
        datetime.fromisoformat(params[bound]).minute or datetime.fromisoformat(params[bound]).second
        for bound in ("start", "end")
        if bound in params
    )
    coarse = grant.transformed.get("observed_at") == "hour" and off_the_hour
    return coarse or ("bbox" in params and not {"lat", "lon"} <= grant.columns)


class Matrix:
    """Sends requests and checks each answer; counts what it saw."""

    def __init__(self, api: httpx.AsyncClient, store: GovernedStore) -> None:
        self.api = api
        self.store = store
        self.sent = 0
        self.seen: Counter[str] = Counter()
        self.by_id = {d: {r["record_id"]: r for r in rows} for d, rows in store.records.items()}
        self._missing: dict[str, tuple[int, str]] = {}

    async def get(self, partner: str, path: str, params: dict[str, Any]) -> httpx.Response:
        self.sent += 1
        return await self.api.get(path, params=params, headers=bearer(self.store.keys[partner]))

    async def as_missing(
        self, partner: str, kind: str, response: httpx.Response, name: str
    ) -> None:
        """The answer must be the one for something that does not exist, but for its id."""
        if kind not in self._missing:
            missing = MISSING if kind != "provenance" else "0" * 32
            path = f"/v1/records/{missing}/provenance" if kind == "provenance" else None
            reference = await self.get(partner, path or _paths(kind, missing), {})
            self._missing[kind] = (reference.status_code, reference.text.replace(missing, "{}"))
        status, body = self._missing[kind]
        assert (response.status_code, response.text.replace(name, "{}")) == (status, body)
        assert status == 404
        self.seen[f"{kind} as missing"] += 1

    async def one(self, rng: random.Random) -> None:
        partner = rng.choice(PARTNERS)
        kind = rng.choice(KINDS)
        if kind == "catalog":
            response = await self.get(partner, "/v1/datasets", {})
            listed = {d["id"] for d in response.json()["datasets"]}
            assert listed == {d for (p, d) in GRANTS if p == partner}
            assert all(d["access"] is None for d in response.json()["datasets"])
            self.seen["catalog"] += 1
            return
        dataset_id = rng.choice([*DATASETS, MISSING])
        grant = GRANTS.get((partner, dataset_id))
        if kind == "provenance":
            await self.provenance(rng, partner, dataset_id, grant)
            return
        params = self.params(rng, kind)
        response = await self.get(partner, _paths(kind, dataset_id), params)
        if grant is None:
            await self.as_missing(partner, kind, response, dataset_id)
            return
        check = getattr(self, kind)
        await check(partner, dataset_id, grant, params, response)

    def params(self, rng: random.Random, kind: str) -> dict[str, Any]:
        if kind == "records":
            params = _filters(rng)
            params["limit"] = rng.randint(1, 120)
            if rng.random() < 0.4:
                params["fields"] = ",".join(rng.sample([*ALL_FIELDS, "region"], rng.randint(1, 3)))
            return params
        if kind == "aggregate":
            params = _filters(rng)
            params["group_by"] = rng.choice(["region", "lane_closed", "sensor_id"])
            params["metric"] = ["count", rng.choice(["mean:speed", "sum:volume", "max:lat"])]
            return params
        return {}

    async def records(
        self,
        partner: str,
        dataset_id: str,
        grant: Grant,
        params: dict[str, Any],
        response: httpx.Response,
    ) -> None:
        asked = params.get("fields", "").split(",") if "fields" in params else None
        withheld = sorted(set(ALL_FIELDS) - grant.columns)
        refused = asked is not None and any(f not in grant.columns | SYSTEM for f in asked)
        if refused or _filter_refused(grant, params):
            assert response.status_code == 400, response.text
            assert not any(re.search(rf"\b{w}\b", response.json()["detail"]) for w in withheld
                           if asked is None or w not in asked)  # fmt: skip
            self.seen["records refused"] += 1
            return
        assert response.status_code == 200, response.text
        body = response.json()
        expected = expected_ids(self.store, partner, dataset_id, params)[: params["limit"]]
        assert [r["record_id"] for r in body["records"]] == expected
        raw = self.by_id[dataset_id]
        for record in body["records"]:
            keys = set(record)
            assert keys <= grant.columns | SYSTEM
            if asked is not None:
                assert keys == {"record_id", *asked}
            self.transformed(grant, record, raw[record["record_id"]])
        self.seen["records rows"] += len(body["records"])
        self.seen["records"] += 1

    @staticmethod
    def transformed(grant: Grant, record: dict[str, Any], raw: Reading) -> None:
        for name, how in grant.transformed.items():
            if name not in record:
                continue
            value = record[name]
            if how == "pseudonym":
                assert _HEX.match(value)
                assert value != raw[name]
            elif how == "mask":
                assert value == "****" + raw[name][-2:]
            else:
                moment = datetime.fromisoformat(value)
                assert moment == raw[name].replace(minute=0, second=0, microsecond=0)

    async def aggregate(
        self,
        partner: str,
        dataset_id: str,
        grant: Grant,
        params: dict[str, Any],
        response: httpx.Response,
    ) -> None:
        plain = (grant.columns - set(grant.transformed)) | {"region"}
        metric_field = params["metric"][1].partition(":")[2]
        refused = _filter_refused(grant, params)
        if params["group_by"] not in plain or metric_field not in plain or refused:
            assert response.status_code == 400, response.text
            self.seen["aggregate refused"] += 1
            return
        assert response.status_code == 200, response.text
        groups = response.json()["groups"]
        rows = [
            self.by_id[dataset_id][i] for i in expected_ids(self.store, partner, dataset_id, params)
        ]
        counts = Counter(str(r[params["group_by"]]) for r in rows)
        assert {str(g[params["group_by"]]): g["count"] for g in groups} == dict(counts)
        for group in groups:
            assert set(group) <= {
                params["group_by"],
                "count",
                f"{params['metric'][1].replace(':', '_')}",
            }
        self.seen["aggregate"] += 1

    async def detail(
        self,
        partner: str,
        dataset_id: str,
        grant: Grant,
        _p: dict[str, Any],
        response: httpx.Response,
    ) -> None:
        assert response.status_code == 200, response.text
        body = response.json()
        assert {f["name"] for f in body["fields"]} == grant.columns
        assert {c["name"] for c in body["columns"]} == grant.columns | SYSTEM
        self.seen["detail"] += 1

    async def snapshots(
        self,
        partner: str,
        dataset_id: str,
        grant: Grant,
        _p: dict[str, Any],
        response: httpx.Response,
    ) -> None:
        assert response.status_code == 200, response.text
        first = response.json()["snapshots"][0]
        manifest = (await self.get(partner, first["href"], {})).json()
        rows = self.store.records[dataset_id]
        regions = {r["region"] for r in rows if grant.keeps(r)}
        assert {f["region"] for f in manifest["files"]} <= regions
        # No grant in this store covers whole files: every file points to its records here.
        assert manifest["manifest_url"] is None
        assert all(f["url"] is None and f["export"] for f in manifest["files"])
        self.seen["snapshots"] += 1

    async def provenance(
        self, rng: random.Random, partner: str, dataset_id: str, grant: Grant | None
    ) -> None:
        if dataset_id == MISSING:
            record_id = f"{rng.getrandbits(128):032x}"
            row = None
        else:
            row = rng.choice(self.store.records[dataset_id])
            record_id = row["record_id"]
        response = await self.get(partner, f"/v1/records/{record_id}/provenance", {})
        if grant is None or row is None or not grant.keeps(row):
            await self.as_missing(partner, "provenance", response, record_id)
            return
        assert response.status_code == 200, response.text
        assert response.json()["record_id"] == record_id
        assert response.json()["dataset_id"] == dataset_id
        self.seen["provenance"] += 1


async def test_no_answer_goes_beyond_a_grant_and_no_answer_tells_what_exists(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    matrix = Matrix(governed_api, served_governed.store)
    rng = random.Random(20261127)

    while matrix.sent < REQUESTS:
        await matrix.one(rng)

    assert matrix.sent >= REQUESTS
    print(dict(matrix.seen))
    # Every kind of answer was reached, allowed and as missing.
    for kind in ("records", "aggregate", "detail", "snapshots", "provenance", "catalog"):
        assert matrix.seen[kind] > 0, kind
    for kind in ("records", "aggregate", "detail", "snapshots", "provenance"):
        assert matrix.seen[f"{kind} as missing"] > 0, kind
    assert matrix.seen["records refused"] > 0
    assert matrix.seen["records rows"] > 10_000
