"""Evidence bundles: the events of a log range exactly as stored, with what an auditor needs to
check them with no server and no store (ADR 21).

The range is widened to signed tree heads: it starts after the last leaf of the last head
before ``from`` (whose recorded frontier, the roots of its perfect subtrees, lets the leaves
after it be appended) and ends at the event that records the first head covering ``to``. The
leaves in between recompute the covering head's root from the start head's frontier, which is
both every event's inclusion and the heads' consistency; the RFC 9162 consistency proof
between the two heads is bundled too, for tools that check only that.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from domain.snapshot import Manifest, SnapshotLog
from domain.tree_head_log import TREE_HEAD_LOG_ID, TreeHeadLog
from storage.errors import StorageError
from storage.object_store import ObjectStore
from storage.transcoder import MsgpackTranscoder
from storage.tree_heads import HEAD_TOPIC, TreeHeadLedger

FORMAT = "baylink-evidence-bundle/1"
DESCRIPTION = "bundle.json"
EVENTS = "events.jsonl"
PUBLIC_KEY = "node-key.pub.pem"
REPORT = "report.json"
README = "README.txt"
OBJECTS = "objects/"
DEFAULT_MAX_EVENTS = 1_000_000
_PUBLISHED_TOPIC = get_topic(SnapshotLog.Published)

_README = """\
baylink evidence bundle: the stored events of log positions {first} to {last} (asked for:
{start} to {end}), enough to check them with no server and no store:

  baylink audit verify --bundle THIS.zip --public-key NODE-KEY.pem

{events}  one JSON object a line: position, originator_id, originator_version, topic and
              state (the stored bytes, base64), in log order, exactly as stored
{description}   the range asked for and bundled, the start head (the last signed tree head
              before the range; its frontier starts the recomputation), the covering head
              (the first head covering the range's end), the RFC 9162 consistency proof
              between them, and the snapshots published in the range
{objects}      the manifests (and, if exported with --with-files, the files) of those
              snapshots, under their object keys
"""
_README_KEY = """\
{key}  the node's public key as the exporter had it: informative only; verify
              under the key you hold for the node
{report}   the exporter's verification of this bundle, as `baylink audit verify --json`
"""


def member(name: str) -> zipfile.ZipInfo:
    """A zip member stamped with a fixed time: the same range exports to the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def mapper() -> Mapper[UUID]:
    """Decodes stored events as every baylink application does (msgpack, no cipher)."""
    return Mapper(transcoder=MsgpackTranscoder())


def event_line(notification: Notification) -> str:
    return json.dumps(
        {
            "position": notification.id,
            "originator_id": str(notification.originator_id),
            "originator_version": notification.originator_version,
            "topic": notification.topic,
            "state": base64.b64encode(notification.state).decode(),
        }
    )


def read_event_line(line: bytes | str) -> Notification:
    """The stored event of one ``events.jsonl`` line; ValueError, KeyError or TypeError if the
    line is not one."""
    raw = json.loads(line)
    return Notification(
        id=int(raw["position"]),
        originator_id=UUID(raw["originator_id"]),
        originator_version=int(raw["originator_version"]),
        topic=str(raw["topic"]),
        state=base64.b64decode(raw["state"], validate=True),
    )


class BundleRangeError(StorageError):
    """The range cannot be bundled: no head covers it, or it is over the maximum."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    first_position: int
    last_position: int
    events: int
    snapshots: int


def _head_summary(position: int, head: TreeHeadLog.Recorded) -> dict[str, Any]:
    return {
        "position": position,
        "version": head.originator_version,
        "tree_size": head.tree_size,
        "last_position": head.last_position,
        "root": head.root.hex(),
    }


def export_bundle(
    ledger: TreeHeadLedger,
    objects: ObjectStore,
    public_key: Ed25519PublicKey | None,
    start: int,
    end: int,
    out: Path,
    *,
    with_files: bool = False,
    max_events: int = DEFAULT_MAX_EVENTS,
) -> ExportSummary:
    """Write the bundle of log positions ``start`` to ``end`` to ``out``."""
    if start > end:
        raise BundleRangeError(f"log position {start} (from) is after {end} (to)")
    heads = ledger.heads()
    before = [h for h in heads if h.last_position < start]
    covering = next((h for h in heads if h.last_position >= end), None)
    if covering is None:
        raise BundleRangeError(
            f"no signed tree head covers log position {end} yet: bundle a range that ends "
            "under the newest head, or wait for the next one"
        )
    start_head = before[-1] if before else None
    after = start_head.last_position if start_head else 0
    needed = covering.tree_size - (start_head.tree_size if start_head else 0)
    if needed > max_events:
        raise BundleRangeError(
            f"log positions {start} to {end} need {needed} events between signed heads, "
            f"over the bundle maximum of {max_events} (--max-events)"
        )
    proof: list[str] = []
    if start_head is not None and start_head.tree_size < covering.tree_size:
        found = ledger.consistency(start_head.tree_size, covering.tree_size)
        proof = [node.hex() for node in found.path]
    codec = mapper()
    published: list[tuple[int, SnapshotLog.Published]] = []
    head_positions: dict[int, int] = {}
    count, last = 0, after
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open(member(EVENTS), "w") as events:
            for notification in _through_head(ledger, after, covering.originator_version):
                events.write(event_line(notification).encode() + b"\n")
                count, last = count + 1, notification.id
                if notification.topic == HEAD_TOPIC:
                    head_positions[notification.originator_version] = notification.id
                elif notification.topic == _PUBLISHED_TOPIC:
                    event = codec.to_domain_event(notification)
                    assert isinstance(event, SnapshotLog.Published)
                    published.append((notification.id, event))
        # One member is written at a time: the objects go after the events.
        snapshots = [
            _bundle_snapshot(bundle, objects, position, event, with_files)
            for position, event in published
        ]
        if covering.originator_version not in head_positions:
            raise BundleRangeError(f"the head of size {covering.tree_size} is not in the log")
        description = {
            "format": FORMAT,
            "from": start,
            "to": end,
            "first_position": after + 1,
            "last_position": last,
            "events": count,
            "start_head": None
            if start_head is None
            else _head_summary(head_positions[start_head.originator_version], start_head),
            "covering_head": _head_summary(head_positions[covering.originator_version], covering),
            "consistency_proof": proof,
            "with_files": with_files,
            "snapshots": snapshots,
        }
        bundle.writestr(member(DESCRIPTION), json.dumps(description, indent=2))
        if public_key is not None:
            pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            bundle.writestr(member(PUBLIC_KEY), pem)
        bundle.writestr(
            member(README),
            _README.format(
                first=after + 1,
                last=last,
                start=start,
                end=end,
                events=EVENTS,
                description=DESCRIPTION,
                objects=OBJECTS,
            )
            + (_README_KEY.format(key=PUBLIC_KEY, report=REPORT) if public_key else ""),
        )
    return ExportSummary(after + 1, last, count, len(snapshots))


def _through_head(ledger: TreeHeadLedger, after: int, version: int) -> Iterator[Notification]:
    """The log after ``after`` up to and including the event recording head ``version``."""
    for notification in ledger.notifications(after):
        yield notification
        if (
            notification.topic == HEAD_TOPIC
            and str(notification.originator_id) == str(TREE_HEAD_LOG_ID)
            and notification.originator_version == version
        ):
            return


def _bundle_snapshot(
    bundle: zipfile.ZipFile,
    objects: ObjectStore,
    position: int,
    published: SnapshotLog.Published,
    with_files: bool,
) -> dict[str, Any]:
    data = objects.get(published.manifest_key)
    bundle.writestr(member(OBJECTS + published.manifest_key), data)
    if with_files:
        for file in Manifest.from_json(data).files:
            bundle.writestr(member(OBJECTS + file.key), objects.get(file.key))
    return {
        "position": position,
        "dataset_id": published.dataset_id,
        "snapshot_id": published.snapshot_id,
        "manifest_key": published.manifest_key,
    }


def add_report(out: Path, report: dict[str, Any]) -> None:
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(member(REPORT), json.dumps(report, indent=2))
