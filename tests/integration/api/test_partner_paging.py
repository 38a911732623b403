"""A partner pages through its grant with cursors that say nothing: every granted record
once, and no exact time in a cursor of a grant that coarsens time."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.integration.api.conftest import ServedGoverned, bearer
from tests.integration.api.governed import MO_DSAT, SZ, expected_ids

pytestmark = pytest.mark.integration

RECORDS = f"/v1/datasets/{SZ}/records"


async def test_a_partner_pages_through_its_grant_with_opaque_cursors(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = bearer(served_governed.store.keys[MO_DSAT])
    seen: list[str] = []
    cursors: list[str] = []
    params: dict[str, str | int] = {"limit": 7}
    while True:
        page = (await governed_api.get(RECORDS, params=params, headers=key)).json()
        seen += [r["record_id"] for r in page["records"]]
        if page["next_cursor"] is None:
            break
        cursors.append(page["next_cursor"])
        params = {"limit": 7, "cursor": page["next_cursor"]}
    tampered = cursors[0][:-3] + ("AAA" if not cursors[0].endswith("AAA") else "BBB")
    refused = await governed_api.get(RECORDS, params={"cursor": tampered}, headers=key)

    assert seen == expected_ids(served_governed.store, MO_DSAT, SZ, {})
    assert len(cursors) > 3
    for cursor in cursors:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        assert b'"t"' not in raw
        assert b"record" not in raw
    assert refused.status_code == 400
    assert refused.json()["parameter"] == "cursor"
