"""Replaying a store built through the real ingest path to random log positions gives sandboxes
that read as the store did then: the same events at the same positions, a record index, a log
that verifies, and every snapshot published by then rebuilt to the published bytes."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from eventsourcing.domain import DomainEvent

from domain.dataset import DatasetDefinition
from domain.ingest import IngestChain
from storage.catalog import Catalog
from storage.errors import ReplayError
from storage.log_replay import (
    SANDBOX_OBJECTS,
    LogReplay,
    ReplayLedger,
    position_at,
    sandbox_event_store_url,
)
from storage.log_verifier import AuditLedger, LogVerifier
from storage.object_store_local import LocalObjectStore
from storage.snapshot_rebuild import Publication, SnapshotRebuild, publications
from storage.snapshots import SnapshotLedger
from storage.tree_heads import HEAD_TOPIC
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.platform import SENSOR_READINGS
from tests.support.stores import BACKENDS, empty_store
from tests.support.tampering import StoredRow, StoreTamperer

pytestmark = pytest.mark.integration

REPLAYS = 20


@dataclasses.dataclass(frozen=True)
class Source:
    url: str
    objects: LocalObjectStore
    last_position: int
    publications: list[Publication]
    rows: list[StoredRow]

    def replay(self, directory: Path, until: int) -> str:
        ledger = ReplayLedger(self.url)
        try:
            report = LogReplay(ledger, self.objects).into(directory, until)
        finally:
            ledger.close()
        assert report.last_position == until
        return sandbox_event_store_url(directory)


def _rows(url: str) -> list[StoredRow]:
    tamperer = StoreTamperer(url)
    try:
        # SQLite keeps originator ids as hex text, PostgreSQL as uuid.
        return [
            dataclasses.replace(r, originator_id=UUID(str(r.originator_id)))
            for r in tamperer.rows()
        ]
    finally:
        tamperer.close()


@pytest.fixture(scope="module", params=BACKENDS)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    with empty_store(request.param, tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path_factory.mktemp("objects"))
        built = build_store(url, objects)
        ledger = ReplayLedger(url)
        try:
            published = list(publications(ledger))
        finally:
            ledger.close()
        yield Source(url, objects, built.last_position, published, _rows(url))


def _rebuilt_files(url: str, objects: Path, scratch: Path) -> dict[str, str]:
    """Rebuild every snapshot the sandbox has published; sha256 of each rebuilt object."""
    ledger, catalog = SnapshotLedger(url), Catalog(url)
    rebuilt = LocalObjectStore(scratch)
    try:
        rebuild = SnapshotRebuild(ledger, catalog, LocalObjectStore(objects), rebuilt)
        for publication in publications(ledger):
            report = rebuild.check(publication)
            assert report.ok, f"{report.mismatch}: {report.detail}"
    finally:
        ledger.close()
        catalog.close()
    return {info.key: info.sha256 for info in rebuilt.list()}


def test_snapshots_rebuilt_from_replays_at_random_positions_are_the_published_bytes(
    source: Source, tmp_path: Path
) -> None:
    randoms = random.Random(19).sample(range(1, source.last_position), REPLAYS)
    positions = [*sorted(randoms), source.last_position]
    rebuilt_snapshots = 0
    for position in positions:
        sandbox = tmp_path / f"at-{position}"
        url = source.replay(sandbox, position)

        expected = [p for p in source.publications if p.position <= position]
        expected_keys = {p.event.manifest_key for p in expected}
        rebuilt = _rebuilt_files(url, sandbox / SANDBOX_OBJECTS, tmp_path / f"scratch-{position}")
        manifests = {key for key in rebuilt if key.endswith("manifest.json")}
        assert manifests == expected_keys
        for key, sha256 in rebuilt.items():
            assert source.objects.stat(key).sha256 == sha256, key
        rebuilt_snapshots += len(expected)

        assert _rows(url) == [r for r in source.rows if r.position <= position]
        built_up_to = SnapshotLedger(url)
        try:
            ends = [p.event.last_position for p in expected]
            assert built_up_to.built_up_to() == max(ends, default=0)
        finally:
            built_up_to.close()
        audit = AuditLedger(url)
        try:
            report = LogVerifier(
                audit, LocalObjectStore(sandbox / SANDBOX_OBJECTS), NODE_KEY.public_key()
            ).run()
        finally:
            audit.close()
        assert report.failure is None, report.failure
        assert report.last_position == position
    # The seed reaches before the first publication, and between publications.
    assert positions[0] < source.publications[0].position
    assert any(
        source.publications[0].position < p < source.publications[-1].position for p in randoms
    )
    assert rebuilt_snapshots > REPLAYS


def test_a_replay_indexes_every_record_of_its_batches(source: Source, tmp_path: Path) -> None:
    url = source.replay(tmp_path / "sandbox", source.last_position)
    ledger = ReplayLedger(url)
    try:
        located = 0
        for row in source.rows:
            if row.topic != "domain.ingest:IngestChain.BatchRecorded":
                continue
            notification = ledger.recorder.select_notifications(row.position, 1)[0]
            batch = ledger.mapper.to_domain_event(notification)
            assert isinstance(batch, IngestChain.BatchRecorded)
            for record in batch.accepted():
                where = ledger.ledger.locate_record(str(record[0]))
                assert where == (batch.originator_id, batch.originator_version)
                located += 1
    finally:
        ledger.close()
    assert located == 3 * 40 * 5


def test_a_time_ends_the_replay_before_the_first_event_stamped_after_it(
    source: Source,
) -> None:
    ledger = ReplayLedger(source.url)
    try:
        events = [
            ledger.mapper.to_domain_event(n)
            for n in ledger.recorder.select_notifications(1, source.last_position)
        ]
        stamps = [e.timestamp for e in events if isinstance(e, DomainEvent)]
        assert len(stamps) == source.last_position
        for position in (1, source.last_position // 2, source.last_position):
            moment = stamps[position - 1]
            end = position_at(ledger, moment)
            assert end >= position
            assert all(stamp <= moment for stamp in stamps[:end])
            assert end == source.last_position or stamps[end] > moment
        with pytest.raises(ReplayError, match="no event at or before"):
            position_at(ledger, stamps[0].replace(year=2000))
    finally:
        ledger.close()


def test_a_gap_in_the_log_is_replayed_at_the_same_positions(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with empty_store("sqlite", tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path / "objects")
        built = build_store(url, objects, rounds=1, messages=8)
        tamperer = StoreTamperer(url)
        try:
            # A rolled-back PostgreSQL insert leaves such a gap; so does a lost head.
            gap = [r for r in tamperer.rows() if r.topic == HEAD_TOPIC]
            tamperer.delete(gap[0].position)
        finally:
            tamperer.close()
        source = Source(url, objects, built.last_position, [], _rows(url))
        sandbox = source.replay(tmp_path / "sandbox", built.last_position)

        assert _rows(sandbox) == source.rows
        assert gap[0].position not in {r.position for r in source.rows}
        with pytest.raises(
            ReplayError, match=f"no event is stored at log position {gap[0].position}"
        ):
            source.replay(tmp_path / "at-the-gap", gap[0].position)


@pytest.mark.parametrize(
    ("until", "message"),
    [(0, "log positions start at 1"), (10**6, "beyond the log, which ends at")],
)
def test_a_position_outside_the_log_is_refused_before_the_sandbox_is_made(
    source: Source, tmp_path: Path, until: int, message: str
) -> None:
    with pytest.raises(ReplayError, match=message):
        source.replay(tmp_path / "sandbox", until)
    assert not (tmp_path / "sandbox").exists()


def test_a_sandbox_that_holds_anything_is_refused(source: Source, tmp_path: Path) -> None:
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "notes.txt").write_text("mine")

    with pytest.raises(ReplayError, match="is not an empty directory"):
        source.replay(tmp_path / "sandbox", 1)


def test_every_published_snapshot_rebuilds_from_the_store_itself(
    source: Source, tmp_path: Path
) -> None:
    ledger, catalog = SnapshotLedger(source.url), Catalog(source.url)
    try:
        rebuild = SnapshotRebuild(ledger, catalog, source.objects, LocalObjectStore(tmp_path))
        reports = [rebuild.run(p.event.snapshot_id) for p in source.publications]
    finally:
        ledger.close()
        catalog.close()

    assert [(r.ok, r.mismatch) for r in reports] == [(True, None)] * len(source.publications)
    assert [r.manifest_sha256 for r in reports] == [
        p.event.manifest_sha256 for p in source.publications
    ]


def test_a_snapshot_rebuilds_with_the_definition_its_dataset_had_when_published(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with empty_store("sqlite", tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path / "objects")
        build_store(url, objects, rounds=1, messages=8)
        catalog, ledger = Catalog(url), SnapshotLedger(url)
        try:
            definition = yaml.safe_load(SENSOR_READINGS.read_text())
            # A new schema version puts snapshots under another prefix: a rebuild with the
            # definition of today would name other files.
            catalog.register(DatasetDefinition.from_dict({**definition, "version": 2}))
            (publication,) = publications(ledger)
            rebuild = SnapshotRebuild(ledger, catalog, objects, LocalObjectStore(tmp_path / "re"))
            report = rebuild.check(publication)
            today = catalog.get(publication.event.dataset_id).version
        finally:
            catalog.close()
            ledger.close()

    assert today == 2
    assert "/v1/" in publication.event.manifest_key
    assert (report.ok, report.manifest_sha256) == (True, publication.event.manifest_sha256)


def _verified(url: str, objects: LocalObjectStore) -> tuple[int, str] | None:
    audit = AuditLedger(url)
    try:
        failure = LogVerifier(audit, objects, NODE_KEY.public_key()).run().failure
    finally:
        audit.close()
    return None if failure is None else (failure.position, failure.reason)


@pytest.mark.parametrize("at", [1, 0.5, -1], ids=["header", "middle", "last-byte"])
def test_a_tampered_store_replays_as_stored_and_fails_verification_where_it_does(
    source: Source, tmp_path: Path, at: float
) -> None:
    row = [r for r in source.rows if r.topic == "domain.ingest:IngestChain.BatchRecorded"][7]
    index = int(len(row.state) * at) if isinstance(at, float) else at
    tamperer = StoreTamperer(source.url)
    try:
        with tamperer.undone(row.position):
            state = bytearray(row.state)
            state[index] ^= 0x01
            tamperer.set_state(row.position, bytes(state))
            url = source.replay(tmp_path / "sandbox", source.last_position)
            in_store = _verified(source.url, source.objects)
    finally:
        tamperer.close()
    in_sandbox = _verified(url, LocalObjectStore(tmp_path / "sandbox" / SANDBOX_OBJECTS))

    assert in_store is not None
    assert in_store[0] == row.position
    assert in_sandbox == in_store


def test_a_sandbox_that_cannot_be_made_is_refused_naming_it(source: Source, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")

    with pytest.raises(ReplayError, match=r"cannot make the sandbox .*/file/sandbox: "):
        source.replay(tmp_path / "file" / "sandbox", 1)
