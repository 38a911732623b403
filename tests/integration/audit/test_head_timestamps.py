"""Tree heads timestamped by a real RFC 3161 TSA (`openssl ts` on loopback): tokens recorded
with the heads verify offline against the TSA's CA, and a token altered, swapped or issued by
an untrusted TSA is a finding at its head's log position; a TSA that fails holds no head back."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from api.audit_schemas import SignedTreeHeadModel
from baylink.cli_snapshots import timestamp_authority
from baylink.errors import BaylinkCliError
from domain.tree_head import TreeHead
from domain.tree_head_log import TreeHeadLog
from storage.head_timestamps import (
    TimestampAuthority,
    TimestampError,
    check_token,
    load_trust_anchors,
)
from storage.log_verifier import AuditLedger, LogVerifier, VerifyReport
from storage.object_store_local import LocalObjectStore
from storage.settings import StorageSettings
from storage.tree_heads import HEAD_TOPIC, TreeHeadLedger, TreeHeadRecorder
from streams.tree_head_follower import start_tree_heads
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.stores import BACKENDS, empty_store
from tests.support.tampering import StoredRow, StoreTamperer
from tests.support.telemetry import in_memory_telemetry
from tests.support.tsa import LocalTsa, local_tsa

pytestmark = pytest.mark.integration

SKEW = timedelta(seconds=5)  # the TSA's clock against the signer's, on one machine


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with local_tsa() as running:
        yield running


@pytest.fixture(scope="module")
def untrusted_tsa() -> Iterator[LocalTsa]:
    with local_tsa("untrusted") as running:
        yield running


@dataclasses.dataclass(frozen=True)
class Store:
    url: str
    objects: LocalObjectStore
    tamperer: StoreTamperer
    anchors: list[x509.Certificate]

    def verify(
        self, anchors: list[x509.Certificate] | None = None, require: bool = False
    ) -> VerifyReport:
        ledger = AuditLedger(self.url)
        try:
            verifier = LogVerifier(
                ledger,
                self.objects,
                NODE_KEY.public_key(),
                tsa_anchors=self.anchors if anchors is None else anchors,
                require_timestamps=require,
            )
            return verifier.run()
        finally:
            ledger.close()

    def head_rows(self) -> list[StoredRow]:
        return [r for r in self.tamperer.rows() if r.topic == HEAD_TOPIC]

    def head(self, row: StoredRow) -> TreeHeadLog.Recorded:
        ledger = AuditLedger(self.url)
        try:
            stored = StoredEvent(row.originator_id, row.originator_version, row.topic, row.state)
            head = ledger.mapper.to_domain_event(stored)
        finally:
            ledger.close()
        assert isinstance(head, TreeHeadLog.Recorded)
        return head

    def put(self, row: StoredRow, head: TreeHeadLog.Recorded) -> None:
        """Store ``head`` in place of the head at ``row``, as one with write access would."""
        ledger = AuditLedger(self.url)
        try:
            self.tamperer.set_state(row.position, ledger.mapper.to_stored_event(head).state)
        finally:
            ledger.close()


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tsa: LocalTsa
) -> Iterator[Store]:
    anchors = load_trust_anchors(tsa.ca_file)
    with empty_store(request.param, tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path_factory.mktemp("objects"))
        build_store(url, objects, rounds=2, messages=16, tsa=TimestampAuthority(tsa.url, anchors))
        tamperer = StoreTamperer(url)
        try:
            yield Store(url, objects, tamperer, anchors)
        finally:
            tamperer.close()


def test_every_head_carries_a_token_and_the_store_verifies(store: Store) -> None:
    rows = store.head_rows()
    assert len(rows) >= 4
    assert all(store.head(row).timestamp_token for row in rows)
    report = store.verify(require=True)
    assert report.failure is None
    assert report.tree_heads == len(rows)


def test_an_auditor_checks_a_served_heads_token_from_the_response_alone(store: Store) -> None:
    row = store.head_rows()[-1]
    served = json.loads(SignedTreeHeadModel.of(store.head(row)).model_dump_json())
    head = TreeHead(
        served["tree_size"],
        bytes.fromhex(served["root"]),
        datetime.fromisoformat(served["timestamp"]),
        served["key_id"],
    )
    stamped = head.canonical_bytes() + bytes.fromhex(served["signature"])

    token = base64.b64decode(served["timestamp_token"])
    assert check_token(token, stamped, store.anchors, head.timestamp) >= head.timestamp - SKEW
    with pytest.raises(TimestampError):
        check_token(token, stamped[:-1] + bytes([stamped[-1] ^ 1]), store.anchors)
    unstamped = dataclasses.replace(store.head(row), timestamp_token=b"")
    assert SignedTreeHeadModel.of(unstamped).timestamp_token is None


def test_a_token_without_a_trust_anchor_is_a_finding(store: Store) -> None:
    report = store.verify(anchors=[])
    assert report.failure is not None
    assert report.failure.reason == "head_timestamp_unverifiable"
    assert report.failure.position == store.head_rows()[0].position


def test_a_flipped_byte_in_a_token_is_found_at_its_head(store: Store) -> None:
    row = store.head_rows()[1]
    head = store.head(row)
    token = head.timestamp_token
    for index in (len(token) // 2, len(token) - 10):
        flipped = token[:index] + bytes([token[index] ^ 0x01]) + token[index + 1 :]
        with store.tamperer.undone(row.position):
            store.put(row, dataclasses.replace(head, timestamp_token=flipped))
            report = store.verify()
        assert report.failure is not None, index
        assert (report.failure.position, report.failure.reason) == (
            row.position,
            "head_timestamp_token",
        )


def test_another_heads_token_is_found_at_the_head_it_was_moved_to(store: Store) -> None:
    first, second = store.head_rows()[:2]
    moved = store.head(first).timestamp_token
    with store.tamperer.undone(second.position):
        store.put(second, dataclasses.replace(store.head(second), timestamp_token=moved))
        report = store.verify()
    assert report.failure is not None
    assert (report.failure.position, report.failure.reason) == (
        second.position,
        "head_timestamp_token",
    )
    assert "Mismatch between messages" in report.failure.message


def test_a_token_from_an_untrusted_tsa_is_found_at_its_head(
    store: Store, untrusted_tsa: LocalTsa
) -> None:
    row = store.head_rows()[2]
    head = store.head(row)
    foreign = TimestampAuthority(untrusted_tsa.url).stamp(head.timestamped_bytes())
    with store.tamperer.undone(row.position):
        store.put(row, dataclasses.replace(head, timestamp_token=foreign))
        report = store.verify()
        # Trusting the other TSA instead, its token verifies: what failed was the trust.
        trusting_it = store.verify(anchors=load_trust_anchors(untrusted_tsa.ca_file))
    assert report.failure is not None
    assert (report.failure.position, report.failure.reason) == (
        row.position,
        "head_timestamp_token",
    )
    assert trusting_it.failure is not None
    assert trusting_it.failure.position == store.head_rows()[0].position


def test_a_removed_token_passes_unless_timestamps_are_required(store: Store) -> None:
    row = store.head_rows()[1]
    with store.tamperer.undone(row.position):
        store.put(row, dataclasses.replace(store.head(row), timestamp_token=b""))
        required = store.verify(require=True)
    assert required.failure is not None
    assert (required.failure.position, required.failure.reason) == (
        row.position,
        "head_timestamp_missing",
    )


class Reading(Aggregate):
    @event("Taken")
    def take(self, value: int) -> None:
        self.value = value


def store_readings(ledger: TreeHeadLedger, count: int) -> None:
    reading = Reading()
    for value in range(count - 1):
        reading.take(value)
    ledger.save(reading)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


def test_a_failing_tsa_holds_no_head_back_and_the_next_head_tries_again(
    tmp_path: Path, tsa: LocalTsa
) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    anchors = load_trust_anchors(tsa.ca_file)
    ledger = TreeHeadLedger(url)
    try:
        down = TreeHeadRecorder(
            ledger, NODE_KEY, every_events=4, tsa=TimestampAuthority(closed_port_url(), anchors)
        )
        store_readings(ledger, 8)
        unstamped = down.run_once()
        assert len(unstamped) == 2
        assert down.timestamp_failures == 2

        tsa.break_answers()
        try:
            answering_badly = TreeHeadRecorder(
                ledger, NODE_KEY, every_events=4, tsa=TimestampAuthority(tsa.url, anchors)
            )
            store_readings(ledger, 4)
            assert len(answering_badly.run_once()) == 1
            assert answering_badly.timestamp_failures == 1
        finally:
            tsa.break_answers(False)
        store_readings(ledger, 4)
        (stamped,) = answering_badly.run_once()
        assert answering_badly.timestamp_failures == 1

        heads = ledger.heads()
        assert [bool(h.timestamp_token) for h in heads] == [False, False, False, True]
        assert heads[-1] == stamped
    finally:
        ledger.close()
    audit = AuditLedger(url)
    try:
        verifier = LogVerifier(
            audit,
            LocalObjectStore(tmp_path / "objects"),
            NODE_KEY.public_key(),
            tsa_anchors=anchors,
        )
        report = verifier.run()
    finally:
        audit.close()
    assert report.failure is None
    assert report.tree_heads == 4


def test_a_head_stored_before_timestamps_decodes_without_one_and_verifies(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    ledger = TreeHeadLedger(url)
    tamperer = StoreTamperer(url)
    try:
        store_readings(ledger, 4)
        TreeHeadRecorder(ledger, NODE_KEY, every_events=4).run_once()
        (row,) = [r for r in tamperer.rows() if r.topic == HEAD_TOPIC]
        state = ledger.mapper.transcoder.decode(row.state)
        assert state.pop("class_version") == 2
        del state["timestamp_token"]
        tamperer.set_state(row.position, ledger.mapper.transcoder.encode(state))
        (head,) = ledger.heads()
    finally:
        tamperer.close()
        ledger.close()
    assert head.timestamp_token == b""
    audit = AuditLedger(url)
    try:
        objects = LocalObjectStore(tmp_path / "objects")
        report = LogVerifier(audit, objects, NODE_KEY.public_key()).run()
        required = LogVerifier(audit, objects, NODE_KEY.public_key(), require_timestamps=True).run()
    finally:
        audit.close()
    assert report.failure is None
    assert report.tree_heads == 1
    assert required.failure is not None
    assert (required.failure.position, required.failure.reason) == (
        row.position,
        "head_timestamp_missing",
    )


def test_the_follower_configured_from_settings_timestamps_its_heads(
    tmp_path: Path, tsa: LocalTsa
) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    settings = StorageSettings(
        event_store_url=url, tree_head_tsa_url=tsa.url, tree_head_tsa_ca_file=str(tsa.ca_file)
    )
    ledger = TreeHeadLedger(url)
    stop = threading.Event()
    thread = start_tree_heads(url, NODE_KEY, 4, 0.05, stop, timestamp_authority(settings))
    try:
        store_readings(ledger, 8)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(ledger.heads()) < 2:
            time.sleep(0.05)
        heads = ledger.heads()
    finally:
        stop.set()
        thread.join(timeout=10)
        ledger.close()
    assert len(heads) >= 2
    anchors = load_trust_anchors(tsa.ca_file)
    for head in heads:
        check_token(head.timestamp_token, head.timestamped_bytes(), anchors, head.timestamp)


def test_unreadable_tsa_settings_are_one_clear_error(tmp_path: Path) -> None:
    assert timestamp_authority(StorageSettings()) is None
    missing = StorageSettings(
        tree_head_tsa_url="http://127.0.0.1:9/tsa",
        tree_head_tsa_ca_file=str(tmp_path / "missing.pem"),
    )
    with pytest.raises(BaylinkCliError, match="cannot read TSA certificates"):
        timestamp_authority(missing)


class CrashingAuthority(TimestampAuthority):
    """A TSA client that fails in a way no TSA reply was foreseen to."""

    def stamp(self, data: bytes) -> bytes:
        raise RuntimeError("unforeseen")


def test_an_unforeseen_failure_asking_for_a_timestamp_holds_no_head_back(
    tmp_path: Path,
) -> None:
    ledger = TreeHeadLedger(f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        recorder = TreeHeadRecorder(
            ledger, NODE_KEY, every_events=4, tsa=CrashingAuthority("http://127.0.0.1:9/")
        )
        store_readings(ledger, 4)
        (head,) = recorder.run_once()
    finally:
        ledger.close()
    assert head.timestamp_token == b""
    assert recorder.timestamp_failures == 1


def timestamp_failures_counted(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    if data is None:
        return 0
    return sum(
        int(point.value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "baylink.tree_heads.timestamp_failures"
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    )


def test_heads_recorded_without_a_timestamp_are_counted_in_the_metric(tmp_path: Path) -> None:
    _, reader = in_memory_telemetry()
    before = timestamp_failures_counted(reader)
    ledger = TreeHeadLedger(f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        recorder = TreeHeadRecorder(
            ledger, NODE_KEY, every_events=2, tsa=TimestampAuthority(closed_port_url())
        )
        store_readings(ledger, 6)
        assert len(recorder.run_once()) == 3
    finally:
        ledger.close()
    assert timestamp_failures_counted(reader) - before == 3
