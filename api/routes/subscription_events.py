"""A subscription's records, live: server-sent events and their WebSocket twin.

Each record is sent with the id a client resumes from (see api.subscription_stream):
reconnecting with ``Last-Event-ID`` (or ``?after=``) continues with the next record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from api.dependencies import PrincipalDep
from api.errors import ConflictError, problem_responses
from api.subscription_access import (
    OwnedSubscription,
    ServicesDep,
    SubscriptionId,
    visible_subscription,
)
from api.subscription_audit import AUDITED, current_access
from api.subscription_services import SubscriptionServices
from api.subscription_stream import (
    RESUME_PATTERN,
    BadResumePointError,
    Ended,
    Heartbeat,
    Paused,
    Record,
    Records,
    ResumePoint,
    StreamItem,
    StreamTiming,
    ended_json,
    event_json,
    paused_json,
    subscription_stream,
)
from domain.subscription import Channel
from storage.subscriptions import SubscriptionInfo

router = APIRouter(tags=["subscriptions"], dependencies=[AUDITED])

EVENT_STREAM = "text/event-stream"
RETRY_MILLISECONDS = 2000
FIRST_MESSAGE_SECONDS = 2.0
# The WebSocket close code for a resume point that is not one.
_CLOSE_INVALID = 1007

_AFTER = Query(
    pattern=RESUME_PATTERN,
    description="Resume after this event id (P or P:k); Last-Event-ID wins when both are sent.",
)


def _event(name: str, data: dict[str, Any], *, with_id: bool = False) -> dict[str, Any]:
    """One kind of event as OpenAPI 3.1 describes an event stream's item: its fields, with
    the JSON its data carries."""
    properties: dict[str, Any] = {
        "event": {"const": name},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        "id": {"type": "string", "pattern": RESUME_PATTERN},
        "retry": {"type": "integer"},
    }
    return {"type": "object", "required": ["event", "data", *(["id"] if with_id else [])],
            "properties": properties}  # fmt: skip


_REASON = {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}
_CLOUD_EVENT = {
    "type": "object",
    "description": "A structured-mode CloudEvents 1.0 JSON event with baylink's extensions.",
    "required": ["specversion", "id", "source", "type", "dataset", "recordid", "position", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string"},
        "dataset": {"type": "string"},
        "recordid": {"type": "string"},
        "agreementid": {"type": "string"},
        "provenancedigest": {"type": "string"},
        "position": {"type": "integer"},
        "data": {"type": "object"},
    },
}
_ENDED = {
    "type": "object",
    "required": ["state", "reason"],
    "properties": {"state": {"const": "cancelled"}, "reason": {"type": "string"}},
}
_STREAM_EVENT = {
    "oneOf": [
        _event("record", _CLOUD_EVENT, with_id=True),
        _event("paused", _REASON),
        _event("cancelled", _ENDED),
    ]
}
_SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `event: record` with `id: P:k` (the k-th record of "
        "log position P) and the structured CloudEvents JSON as data; `event: paused` with "
        "the reason while delivery is stopped; `event: cancelled` before the stream ends; "
        "comment lines as heartbeats. The schema describes one event.",
        "content": {EVENT_STREAM: {"schema": _STREAM_EVENT}},
    },
    **problem_responses(401, 404, 409, 422, 429, 503),
}


def _timing(state: Any) -> StreamTiming:
    timing = getattr(state, "stream_timing", None)
    return timing if isinstance(timing, StreamTiming) else StreamTiming()


def _require_channel(info: SubscriptionInfo, channel: Channel) -> None:
    if info.terms.channel is not channel:
        raise ConflictError(
            f"subscription {info.terms.subscription_id!r} delivers on "
            f"{info.terms.channel.value}, not {channel.value}"
        )


@router.get(
    "/subscriptions/{subscription_id}/events",
    response_class=StreamingResponse,
    responses=_SSE_RESPONSES,
)
def subscription_events(
    request: Request,
    info: OwnedSubscription,
    services: ServicesDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The id of the last event received: the stream continues after it.",
        ),
    ] = None,
    after: Annotated[str | None, _AFTER] = None,
) -> StreamingResponse:
    """The subscription's records as server-sent events, as its agreement grants them now.

    Only a subscription on the sse channel streams here. The stream stays open: while idle
    it sends heartbeat comments; while the policy or the partner stops delivery it sends
    ``event: paused`` once and waits, skipping nothing.
    """
    _require_channel(info, Channel.SSE)
    try:
        point = ResumePoint.parse(last_event_id or after)
    except BadResumePointError as error:
        raise RequestValidationError(
            [{"loc": ("header", "Last-Event-ID"), "msg": str(error), "type": "value_error"}]
        ) from None
    stream = subscription_stream(
        services, info.terms.subscription_id, point, _timing(request.app.state)
    )
    return StreamingResponse(
        _server_sent(stream),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _server_sent(stream: AsyncIterator[StreamItem]) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    async for item in stream:
        yield _sse_event(item)


def _sse_event(item: StreamItem) -> str:
    if isinstance(item, Records):
        return "".join(_sse_record(r) for r in item.records)
    if isinstance(item, Paused):
        return f"event: paused\n{_data(paused_json(item))}\n"
    if isinstance(item, Ended):
        return f"event: {item.state}\n{_data(ended_json(item))}\n"
    return ": heartbeat\n\n"


def _sse_record(record: Record) -> str:
    # Made once per record and grant, and shared by every stream that sends it.
    frame = record.rendered.get("sse")
    if frame is None:
        frame = f"id: {record.event_id}\nevent: record\n{_data(event_json(record))}\n"
        record.rendered["sse"] = frame
    return frame


def _data(text: str) -> str:
    return "".join(f"data: {line}\n" for line in text.split("\n"))


@router.websocket("/subscriptions/{subscription_id}/ws")
async def subscription_socket(
    websocket: WebSocket,
    subscription_id: SubscriptionId,
    principal: PrincipalDep,
    after: Annotated[str | None, _AFTER] = None,
) -> None:
    """The same records as JSON text frames: ``{"type": "record", "id": "P:k", "event":
    {...}}``, ``{"type": "paused", "reason": ...}``, ``{"type": "heartbeat"}`` and
    ``{"type": "cancelled", ...}``. The credential is the upgrade request's Authorization
    header. Without ``?after=`` the first client message may say where to resume:
    ``{"after": "P:k"}``."""
    state = websocket.app.state
    services: SubscriptionServices = state.subscription_services
    # Refused before the upgrade, as a problem document with the same status as over HTTP.
    info = await asyncio.to_thread(visible_subscription, services, principal, subscription_id)
    current_access(websocket).about(info)
    _require_channel(info, Channel.WEBSOCKET)
    await websocket.accept()
    try:
        point = ResumePoint.parse(after if after is not None else await _first_message(websocket))
    except BadResumePointError as error:
        await websocket.close(_CLOSE_INVALID, str(error)[:120])
        return
    stream = subscription_stream(services, subscription_id, point, _timing(state))
    sending = asyncio.create_task(_send_all(websocket, stream))
    # Listening meanwhile notices a client that left while the stream is idle.
    listening = asyncio.create_task(_until_disconnected(websocket))
    try:
        await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, listening):
            task.cancel()
        await asyncio.gather(sending, listening, return_exceptions=True)
        await stream.aclose()


async def _send_all(websocket: WebSocket, stream: AsyncIterator[StreamItem]) -> None:
    try:
        async for item in stream:
            for frame in _frames(item):
                await websocket.send_text(frame)
        await websocket.close()
    except WebSocketDisconnect:
        pass


async def _until_disconnected(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _first_message(websocket: WebSocket) -> str | None:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_SECONDS)
    except TimeoutError:
        return None
    try:
        message = json.loads(text)
        after = message.get("after") if isinstance(message, dict) else None
    except ValueError:
        raise BadResumePointError(f'expected {{"after": "P:k"}}, got {text[:60]!r}') from None
    return None if after is None else str(after)


def _frames(item: StreamItem) -> list[str]:
    if isinstance(item, Records):
        return [_socket_record(r) for r in item.records]
    if isinstance(item, Paused):
        return [json.dumps({"type": "paused", "reason": item.reason})]
    if isinstance(item, Heartbeat):
        return [json.dumps({"type": "heartbeat"})]
    return [json.dumps({"type": item.state, "reason": item.reason})]


def _socket_record(record: Record) -> str:
    frame = record.rendered.get("websocket")
    if frame is None:
        event_id = json.dumps(record.event_id)
        frame = f'{{"type":"record","id":{event_id},"event":{event_json(record)}}}'
        record.rendered["websocket"] = frame
    return frame
