"""`baylink audit recipients | decisions | history`: the questions auditors ask (ADR 20), read
from the platform's event store as the administrator reads them over HTTP. ``--json`` prints
what the audit API answers, over the whole log (the API pages it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from eventsourcing.persistence import PersistenceError

from api.audit_question_schemas import DecisionsAnswer, HistoryAnswer, RecipientsAnswer
from baylink.cli_options import DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from storage.access_log import AccessLog
from storage.audit_questions import AuditQuestions, HistoryEvent

_WHOLE_LOG = 2**62
Since = Annotated[
    str | None, typer.Option(metavar="TIME", help="At or after (ISO 8601 with a UTC offset).")
]
Until = Annotated[
    str | None, typer.Option(metavar="TIME", help="Before (ISO 8601 with a UTC offset).")
]


class Subject(StrEnum):
    agreement = "agreement"
    rule = "rule"


def add_commands(audit_app: typer.Typer) -> None:
    audit_app.command("recipients")(recipients)
    audit_app.command("decisions")(decisions)
    audit_app.command("history")(history)


@contextmanager
def _questions(data_dir: DataDir, event_store: EventStore) -> Iterator[AuditQuestions]:
    url = resolve_context(data_dir, None, event_store).storage.event_store_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise BaylinkCliError(f"no event store at {url.removeprefix('sqlite:///')}")
    try:
        ledger = AccessLog(url)
    except PersistenceError as error:
        raise BaylinkCliError(f"cannot open the event store: {error}") from None
    try:
        yield AuditQuestions(ledger)
    except PersistenceError as error:
        raise BaylinkCliError(f"cannot read the event store: {error}") from None
    finally:
        ledger.close()


def _period(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    moments: list[datetime | None] = []
    for option, text in (("--since", since), ("--until", until)):
        if text is None:
            moments.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise BaylinkCliError(f"{option}: expected an ISO 8601 time, got {text!r}") from None
        if moment.utcoffset() is None:
            raise BaylinkCliError(f"{option}: give a UTC offset, e.g. 2026-06-01T08:00:00Z")
        moments.append(moment)
    start, end = moments
    if start is not None and end is not None and start >= end:
        raise BaylinkCliError("--until must come after --since")
    return start, end


def _positions(positions: list[int]) -> str:
    shown = ", ".join(str(p) for p in positions[:8])
    return shown + (f" and {len(positions) - 8} more" if len(positions) > 8 else "")


def recipients(
    dataset: Annotated[str, typer.Argument(help="The dataset's id.")],
    since: Since = None,
    until: Until = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """Who received DATASET's records: per partner, channel (a subscription's, `query` or
    `snapshot`) and agreement, with whitelist versions, record counts, times and log
    positions."""
    start, end = _period(since, until)
    with _questions(data_dir, event_store) as questions:
        page = questions.recipients(dataset, start, end, limit=_WHOLE_LOG)
    if as_json:
        typer.echo(RecipientsAnswer.of(page).model_dump_json())
        return
    for r in page.recipients:
        versions = ", ".join(f"v{v}" for v in r.whitelist_versions) or "none"
        entries = "requests" if r.channel in ("query", "snapshot") else "deliveries"
        typer.echo(
            f"{r.partner_id} via {r.channel} under {r.agreement_id or 'its own region'}: "
            f"{r.records} records in {r.entries} {entries}"
            f", {r.first_at.isoformat()} .. {r.last_at.isoformat()}, whitelist {versions}\n"
            f"  log positions {_positions(r.positions)}"
        )
    typer.echo(f"{len(page.recipients)} recipients of {dataset}")


def decisions(
    partner: Annotated[str, typer.Argument(help="The partner's id.")],
    since: Since = None,
    until: Until = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """Every policy decision about PARTNER, granted and refused, with the reason, agreement
    and whitelist version, oldest first."""
    start, end = _period(since, until)
    with _questions(data_dir, event_store) as questions:
        page = questions.decisions(partner, start, end, limit=_WHOLE_LOG)
    if as_json:
        typer.echo(DecisionsAnswer.of(page).model_dump_json())
        return
    for d in page.decisions:
        typer.echo(
            f"{d.position} {d.at.isoformat()} {d.source} {d.dataset_id or '-'}: "
            f"{'granted' if d.allowed else 'refused'} ({d.reason}), agreement "
            f"{d.agreement_id or '-'}, whitelist v{d.whitelist_version}, {d.records} records"
        )
    typer.echo(f"{len(page.decisions)} decisions about {partner}")


def history(
    subject: Annotated[Subject, typer.Argument(help="agreement or rule (a whitelist rule).")],
    subject_id: Annotated[str, typer.Argument(metavar="ID", help="Its id.")],
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """Every event of an agreement or a whitelist rule, oldest first, with who made it."""
    with _questions(data_dir, event_store) as questions:
        if subject is Subject.agreement:
            events = questions.agreement_history(subject_id)
        else:
            events = questions.rule_history(subject_id)
    if not events:
        what = "agreement" if subject is Subject.agreement else "whitelist rule"
        raise BaylinkCliError(f"no {what} {subject_id!r}")
    if as_json:
        name = "agreement" if subject is Subject.agreement else "whitelist-rule"
        typer.echo(HistoryAnswer.of(name, subject_id, events).model_dump_json())
        return
    for event in events:
        typer.echo(_history_line(event))


def _history_line(event: HistoryEvent) -> str:
    parts = [f"{event.position} {event.at.isoformat()} {event.event}"]
    if event.agreement_id is not None and event.event.startswith("cited"):
        parts.append(f"agreement {event.agreement_id}")
    parts.append(f"by {event.by or 'unrecorded'}")
    if event.whitelist_version is not None:
        parts.append(f"whitelist v{event.whitelist_version}")
    if event.whitelist_rules:
        parts.append("rules " + ", ".join(event.whitelist_rules))
    if event.reason:
        parts.append(f"reason: {event.reason}")
    if event.request_position is not None:
        parts.append(f"request at {event.request_position}")
    return "; ".join(parts)
