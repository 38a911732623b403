"""A dataset's records, filtered and paged, as JSON, CSV, Arrow or Parquet."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.dependencies import (
    CURSOR_PATTERN,
    REGION_PATTERN,
    BoundingBoxParam,
    DatasetId,
    EndParam,
    FieldsParam,
    PolicyDep,
    RecordFormatParam,
    StartParam,
)
from api.errors import problem_responses
from api.media import MEDIA_TYPES, RecordFormat, encode
from api.schemas import RecordsPage
from storage.query import DEFAULT_LIMIT, MAX_LIMIT
from storage.record_json import json_records

NEXT_CURSOR_HEADER = "Baylink-Next-Cursor"
POSITION_HEADER = "Baylink-Current-To-Position"

router = APIRouter(tags=["records"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PAGE_HEADERS: dict[str, Any] = {
    NEXT_CURSOR_HEADER: {
        "description": "Cursor of the next page; absent on the last page.",
        "schema": {"type": "string"},
    },
    POSITION_HEADER: {
        "description": "The page holds every record stored up to this event-log position.",
        "schema": {"type": "integer"},
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of records. JSON carries the cursor and position in the body, "
        "the other formats in the Baylink-Next-Cursor and Baylink-Current-To-Position headers.",
        "headers": _PAGE_HEADERS,
        "content": {
            MEDIA_TYPES[RecordFormat.CSV]: {"schema": {"type": "string"}},
            MEDIA_TYPES[RecordFormat.ARROW]: _BINARY,
            MEDIA_TYPES[RecordFormat.PARQUET]: _BINARY,
        },
    },
    **problem_responses(400, 401, 404, 406, 422, 429, 503),
}


@router.get("/datasets/{dataset_id}/records", response_model=RecordsPage, responses=_RESPONSES)
def dataset_records(
    dataset_id: DatasetId,
    policy: PolicyDep,
    answer_as: RecordFormatParam,
    bbox: BoundingBoxParam,
    fields: FieldsParam,
    start: StartParam = None,
    end: EndParam = None,
    region: Annotated[
        str | None, Query(pattern=REGION_PATTERN, description="Region code, e.g. hk.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")] = (
        DEFAULT_LIMIT
    ),
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            max_length=1024,
            description="next_cursor of the previous page, with the same filters.",
        ),
    ] = None,
) -> Response:
    """Records matching every filter, in (time field, record_id) order, one page at a time.

    Answers from every published snapshot plus the log's tail that no snapshot holds yet; a
    partner receives the rows, fields and transformed values its grant sets. Where the grant
    coarsens the location to H3 cells, each record carries `h3_cell` (the cell at the grant's
    resolution) and its location is the cell's centre (for a geometry field, a point at the
    centre of the cell of a point on the geometry), never finer.
    """
    page = policy.records(
        dataset_id,
        start=start,
        end=end,
        region=region,
        bbox=bbox,
        fields=fields,
        limit=limit,
        cursor=cursor,
    )
    if answer_as is RecordFormat.JSON:
        body = RecordsPage.model_construct(
            dataset_id=dataset_id,
            count=page.table.num_rows,
            records=json_records(page.table),
            next_cursor=page.next_cursor,
            current_to_position=page.current_to_position,
        ).model_dump_json()
        return Response(body, media_type=MEDIA_TYPES[RecordFormat.JSON])
    headers = {POSITION_HEADER: str(page.current_to_position)}
    if page.next_cursor is not None:
        headers[NEXT_CURSOR_HEADER] = page.next_cursor
    return Response(
        encode(page.table, answer_as), media_type=MEDIA_TYPES[answer_as], headers=headers
    )
