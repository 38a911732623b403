"""`baylink audit replay` makes a sandbox data dir that the read commands take as it is, and
`baylink audit rebuild-snapshot` rebuilds a published snapshot: exit 0 and one line when every
byte is the published one, exit 1 naming the first file that differs; bad input is one line
and exit 2."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
)

from baylink.errors import BaylinkCliError
from domain.batch_codec import encode_records
from domain.ingest import IngestChain
from domain.snapshot import Manifest
from storage.log_replay import ReplayLedger
from storage.object_store_local import LocalObjectStore
from storage.snapshot_rebuild import Publication, publications
from tests.support.audit_cli import run_audit, stopped_platform
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.tampering import StoredRow, StoreTamperer

pytestmark = pytest.mark.integration

BATCH_TOPIC = "domain.ingest:IngestChain.BatchRecorded"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A stopped platform's data dir: its SQLite store, objects and node key."""
    platform = tmp_path / "platform"
    platform.mkdir()
    return stopped_platform(platform)


def _publications(data_dir: Path) -> list[Publication]:
    ledger = ReplayLedger(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        return list(publications(ledger))
    finally:
        ledger.close()


run = run_audit


def test_a_replayed_sandbox_verifies_and_rebuilds_what_was_published_by_then(
    data_dir: Path, tmp_path: Path
) -> None:
    published = _publications(data_dir)
    until = published[1].position + 3
    sandbox = tmp_path / "sandbox"
    public = tmp_path / "node.pub.pem"
    public.write_bytes(
        NODE_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )

    code, out, err = run(
        "replay", "--data-dir", str(data_dir), "--until", str(until), "--into", str(sandbox)
    )
    verified = run("verify", "--data-dir", str(sandbox), "--public-key", str(public))
    rebuilt = [
        run("rebuild-snapshot", p.event.snapshot_id, "--data-dir", str(sandbox))
        for p in published[:2]
    ]

    assert code == 0, err
    assert out == (
        f"replayed {until} events up to log position {until} into {sandbox}: "
        "2 snapshots (8 objects)\n"
    )
    assert verified[0] == 0, verified[2]
    assert verified[1].startswith(f"verified {until} events up to log position {until}: ")
    assert [r[0] for r in rebuilt] == [0, 0]
    for (_, line, _), publication in zip(rebuilt, published[:2], strict=True):
        assert line.startswith(f"rebuilt snapshot {publication.event.snapshot_id} of ")
        assert line.endswith(
            f"manifest sha256 {publication.event.manifest_sha256}, all equal to the published\n"
        )
    with pytest.raises(BaylinkCliError, match="is published"):  # after the replay's end
        run("rebuild-snapshot", published[2].event.snapshot_id, "--data-dir", str(sandbox))


def test_a_time_after_every_event_replays_the_whole_log(data_dir: Path, tmp_path: Path) -> None:
    code, out, err = run(
        "replay",
        "--data-dir",
        str(data_dir),
        "--until",
        "2999-01-01T00:00:00+08:00",
        "--into",
        str(tmp_path / "sandbox"),
    )

    assert code == 0, err
    assert out.startswith("replayed 144 events up to log position 144 ")


def _tamper_with_a_record(data_dir: Path, publication: Publication) -> str:
    """Change one value of one record of a batch in the snapshot's range; the record's id."""
    url = f"sqlite:///{data_dir / 'events.sqlite'}"
    ledger, tamperer = ReplayLedger(url), StoreTamperer(url)
    try:
        row: StoredRow = next(
            r
            for r in tamperer.rows()
            if r.topic == BATCH_TOPIC and r.position >= publication.event.first_position
        )
        notification = ledger.recorder.select_notifications(row.position, 1)[0]
        batch = ledger.mapper.to_domain_event(notification)
        assert isinstance(batch, IngestChain.BatchRecorded)
        records = batch.accepted()
        column = next(i for i, v in enumerate(records[0]) if isinstance(v, float))
        records[0][column] = float(records[0][column]) + 1.0  # type: ignore[arg-type]
        forged = dataclasses.replace(batch, records=encode_records(records))
        tamperer.set_state(row.position, ledger.mapper.to_stored_event(forged).state)
        return str(records[0][0])
    finally:
        tamperer.close()
        ledger.close()


def test_a_tampered_batch_fails_the_rebuild_naming_the_file_it_changes(data_dir: Path) -> None:
    publication = _publications(data_dir)[1]
    record_id = _tamper_with_a_record(data_dir, publication)
    objects = data_dir / "objects"
    manifest = Manifest.from_json((objects / publication.event.manifest_key).read_bytes())
    (holder,) = [
        f.key
        for f in manifest.files
        if record_id
        in pq.read_table(objects / f.key, columns=["record_id"])["record_id"].to_pylist()
    ]

    code, out, err = run(
        "rebuild-snapshot", publication.event.snapshot_id, "--data-dir", str(data_dir)
    )
    json_code, json_out, _ = run(
        "rebuild-snapshot", publication.event.snapshot_id, "--data-dir", str(data_dir), "--json"
    )

    assert code == 1
    assert out == ""
    assert err.startswith(
        f"baylink: rebuilt snapshot {publication.event.snapshot_id} of "
        f"{publication.event.dataset_id} differs at {holder}: rebuilt sha256 "
    )
    assert len(err.splitlines()) == 1
    assert json_code == 1
    report = json.loads(json_out)
    assert (report["ok"], report["mismatch"]) == (False, holder)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["replay", "--until", "145", "--into", "{tmp}/x"], "beyond the log, which ends at 144"),
        (["replay", "--until", "0", "--into", "{tmp}/x"], "log positions start at 1"),
        (["replay", "--until", "soon", "--into", "{tmp}/x"], "neither a log position nor"),
        (["replay", "--until", "2026-11-27T12:00", "--into", "{tmp}/x"], "names no UTC offset"),
        (["replay", "--until", "1999-01-01T00:00Z", "--into", "{tmp}/x"], "no event at or before"),
        (["replay", "--until", "5", "--into", "{data}"], "is not an empty directory"),
        (["rebuild-snapshot", "000000000001-000000000002"], "no snapshot '000000000001-"),
        (["rebuild-snapshot", "000000000001-000000000048", "--dataset", "x"], "of dataset 'x'"),
    ],
)
def test_bad_input_is_one_line_naming_what_was_wrong(
    data_dir: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    given = [a.format(tmp=tmp_path, data=data_dir) for a in arguments]

    with pytest.raises(BaylinkCliError, match=message) as raised:
        run(*given, "--data-dir", str(data_dir))

    assert "\n" not in str(raised.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["replay", "rebuild-snapshot"])
def test_urls_go_together(command: str, tmp_path: Path) -> None:
    arguments = ["--until", "1", "--into", str(tmp_path / "x")] if command == "replay" else ["1"]
    with pytest.raises(BaylinkCliError, match="--event-store and --object-store go together"):
        run(command, *arguments, "--event-store", f"sqlite:///{tmp_path}/e.sqlite")


@pytest.mark.parametrize(
    "arguments",
    [
        ["replay", "--until", "1", "--into", "{tmp}/x"],
        ["rebuild-snapshot", "000000000001-000000000048"],
    ],
)
def test_a_missing_store_exits_2_with_one_line(tmp_path: Path, arguments: list[str]) -> None:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BAYLINK_STORAGE_", "BAYLINK_DATA"))
    }
    given = [a.format(tmp=tmp_path) for a in arguments]
    process = subprocess.run(
        [sys.executable, "-m", "baylink", "audit", *given, "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert process.returncode == 2
    assert (
        process.stderr.strip()
        == f"baylink: error: no event store at {tmp_path / 'none'}/events.sqlite"
    )


def test_a_postgres_store_given_by_urls_replays_and_rebuilds(
    postgres_url: str, tmp_path: Path
) -> None:
    objects = tmp_path / "objects"
    build_store(postgres_url, LocalObjectStore(objects))
    ledger = ReplayLedger(postgres_url)
    try:
        last = list(publications(ledger))[-1]
    finally:
        ledger.close()
    urls = ["--event-store", postgres_url, "--object-store", objects.as_uri()]

    replayed = run("replay", *urls, "--until", "100", "--into", str(tmp_path / "sandbox"))
    code, out, err = run("rebuild-snapshot", last.event.snapshot_id, *urls, "--json")

    assert replayed[0] == 0, replayed[2]
    assert replayed[1].startswith("replayed 100 events up to log position 100 ")
    assert code == 0, err
    report = json.loads(out)
    assert (report["ok"], report["manifest_sha256"]) == (True, last.event.manifest_sha256)
    assert report["position"] == last.position


def test_a_replaced_manifest_fails_the_rebuild_naming_it(data_dir: Path) -> None:
    publication = _publications(data_dir)[0]
    objects = LocalObjectStore(data_dir / "objects")
    manifest = Manifest.from_json(objects.get(publication.event.manifest_key))
    # A manifest that lists one file fewer, stored whole (its own checksum holds).
    forged = dataclasses.replace(manifest, files=manifest.files[1:])
    objects.put(publication.event.manifest_key, forged.to_json())

    code, _, err = run(
        "rebuild-snapshot", publication.event.snapshot_id, "--data-dir", str(data_dir)
    )

    assert code == 1
    assert err == (
        f"baylink: rebuilt snapshot {publication.event.snapshot_id} of "
        f"{publication.event.dataset_id} differs at {publication.event.manifest_key}: the "
        "published manifest is not the one its publication event names\n"
    )


def test_a_batch_that_no_longer_decodes_fails_the_rebuild_naming_its_position(
    data_dir: Path,
) -> None:
    publication = _publications(data_dir)[0]
    tamperer = StoreTamperer(f"sqlite:///{data_dir / 'events.sqlite'}")
    try:
        row = next(r for r in tamperer.rows() if r.topic == BATCH_TOPIC)
        tamperer.set_state(row.position, row.state[:1] + bytes([row.state[1] ^ 1]) + row.state[2:])
    finally:
        tamperer.close()

    code, out, err = run(
        "rebuild-snapshot", publication.event.snapshot_id, "--data-dir", str(data_dir)
    )

    assert code == 1
    assert out == ""
    assert err.startswith(
        f"baylink: rebuilt snapshot {publication.event.snapshot_id} of "
        f"{publication.event.dataset_id} differs at log position {row.position}: the batch "
        "does not decode: "
    )
    assert len(err.splitlines()) == 1
