"""Evidence bundles: `baylink audit export-bundle` writes a log range's events as stored with
the heads, proof and manifests that check them; `baylink audit verify --bundle` checks one with
no store, under the auditor's key, and names the first bad item of a tampered bundle."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from baylink.errors import BaylinkCliError
from domain.snapshot import SnapshotLog
from domain.tree_head import sign_tree_head
from domain.tree_head_log import TreeHeadLog
from storage.bundle_verifier import BundleUnreadableError, verify_bundle
from storage.evidence_bundle import mapper
from storage.object_store_local import LocalObjectStore
from tests.support.audit_cli import run_audit
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.stores import BACKENDS, empty_store
from tests.support.tampering import StoreTamperer

pytestmark = pytest.mark.integration

BATCH_TOPIC = "domain.ingest:IngestChain.BatchRecorded"
HEAD_TOPIC = "domain.tree_head_log:TreeHeadLog.Recorded"
PUBLISHED_TOPIC = "domain.snapshot:SnapshotLog.Published"


@dataclasses.dataclass(frozen=True)
class Platform:
    """A built store and the options an auditor's export names it by."""

    options: list[str]
    public_key: Path
    last_covered: int  # the last log position under the newest signed head


def pem_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module", params=BACKENDS)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    with empty_store(request.param, tmp_path_factory) as url:
        objects = tmp_path_factory.mktemp("objects")
        built = build_store(url, LocalObjectStore(objects))
        public = tmp_path_factory.mktemp("keys") / "node.pub.pem"
        public.write_bytes(pem_of(NODE_KEY))
        options = ["--event-store", url, "--object-store", objects.as_uri()]
        # The last event is the newest head, which covers everything before it.
        yield Platform([*options, "--public-key", str(public)], public, built.last_position - 1)


run = run_audit


def export(platform: Platform, out: Path, start: int, end: int, *extra: str) -> Path:
    code, stdout, stderr = run(
        "export-bundle", "--from", str(start), "--to", str(end), "--out", str(out),
        *platform.options, *extra,
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out}: ")
    assert stdout.strip().endswith("verified")
    return out


def verify(bundle: Path, *options: str) -> tuple[int, str, str]:
    return run("verify", "--bundle", str(bundle), *options)


def rewrite(bundle: Path, member: str, change: Callable[[bytes], bytes]) -> None:
    """Replace one member of the zip by ``change`` of it."""
    with zipfile.ZipFile(bundle) as original:
        members = {name: original.read(name) for name in original.namelist()}
    members[member] = change(members[member])
    with zipfile.ZipFile(bundle, "w") as rewritten:
        for name, data in members.items():
            rewritten.writestr(name, data)


def events_of(bundle: Path) -> list[dict[str, object]]:
    with zipfile.ZipFile(bundle) as opened:
        return [json.loads(line) for line in opened.read("events.jsonl").splitlines()]


def rewrite_events(bundle: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    def changed(data: bytes) -> bytes:
        events = [json.loads(line) for line in data.splitlines()]
        change(events)
        return b"".join(json.dumps(e).encode() + b"\n" for e in events)

    rewrite(bundle, "events.jsonl", changed)


def state_of(event: dict[str, object]) -> bytes:
    return base64.b64decode(str(event["state"]))


def decoded(event: dict[str, object]) -> object:
    stored = StoredEvent(
        UUID(str(event["originator_id"])),
        int(str(event["originator_version"])),
        str(event["topic"]),
        state_of(event),
    )
    return mapper().to_domain_event(stored)


def encoded(domain_event: object) -> str:
    state = mapper().to_stored_event(domain_event).state  # type: ignore[arg-type]
    return base64.b64encode(state).decode()


def assert_refused(bundle: Path, platform: Platform, item: str, reason: str) -> None:
    code, out, err = verify(bundle, "--public-key", str(platform.public_key))
    json_code, json_out, _ = verify(bundle, "--public-key", str(platform.public_key), "--json")

    assert code == json_code == 1
    assert out == ""
    assert err.startswith(f"baylink: bundle verify failed at {item} ({reason}): "), err
    assert len(err.strip().splitlines()) == 1
    failure = json.loads(json_out)["failure"]
    assert (failure["item"], failure["reason"]) == (item, reason)


@pytest.mark.parametrize("span", [(1, 1), (50, 120), (130, 131), (61, 61)])
def test_bundles_of_ranges_verify_under_the_auditors_key(
    platform: Platform, tmp_path: Path, span: tuple[int, int]
) -> None:
    start, end = span
    bundle = export(platform, tmp_path / "bundle.zip", start, end)

    code, out, err = verify(bundle, "--public-key", str(platform.public_key))
    json_code, json_out, _ = verify(bundle, "--public-key", str(platform.public_key), "--json")

    assert code == json_code == 0, err
    assert out.startswith(f"verified bundle of log positions {start} to {end}: ")
    report = json.loads(json_out)
    positions = [int(str(e["position"])) for e in events_of(bundle)]
    assert report["first_position"] == positions[0] <= start
    assert end < report["last_position"] == positions[-1]
    assert report["verified"]["events"] == len(positions)
    assert report["verified"]["tree_heads"] >= 1
    with zipfile.ZipFile(bundle) as opened:
        assert json.loads(opened.read("report.json")) == report
        assert opened.read("node-key.pub.pem") == pem_of(NODE_KEY)
        assert "verify --bundle" in opened.read("README.txt").decode()


def test_a_bundle_of_the_whole_log_verifies(platform: Platform, tmp_path: Path) -> None:
    bundle = export(platform, tmp_path / "all.zip", 1, platform.last_covered, "--with-files")

    code, _, err = verify(bundle, "--public-key", str(platform.public_key), "--json")

    assert code == 0, err
    report = json.loads(_)
    assert report["first_position"] == 1
    assert (report["verified"]["batches"], report["verified"]["snapshots"]) == (120, 3)
    with zipfile.ZipFile(bundle) as opened:
        files = [n for n in opened.namelist() if n.endswith(".parquet")]
    assert files, "--with-files bundles the snapshots' files"


@pytest.fixture
def ranged(platform: Platform, tmp_path: Path) -> Path:
    """A bundle with a start head, a consistency proof and a published snapshot."""
    bundle = export(platform, tmp_path / "ranged.zip", 50, 120)
    topics = {e["topic"] for e in events_of(bundle)}
    assert {BATCH_TOPIC, HEAD_TOPIC, PUBLISHED_TOPIC} <= topics
    return bundle


def test_a_flipped_byte_in_an_event_state_is_named(platform: Platform, ranged: Path) -> None:
    events = events_of(ranged)
    batch = [e for e in events if e["topic"] == BATCH_TOPIC][10]

    def flip(events: list[dict[str, object]]) -> None:
        state = bytearray(state_of(batch))
        state[len(state) // 2] ^= 0x01
        events[events.index(batch)]["state"] = base64.b64encode(state).decode()

    rewrite_events(ranged, flip)

    code, _, err = verify(ranged, "--public-key", str(platform.public_key))
    assert code == 1
    assert err.startswith(f"baylink: bundle verify failed at log position {batch['position']} (")


def test_a_dropped_event_is_found_by_the_head_over_it(platform: Platform, ranged: Path) -> None:
    events = events_of(ranged)
    dropped = [e for e in events if e["topic"] == BATCH_TOPIC][20]
    head = next(
        e
        for e in events
        if e["topic"] == HEAD_TOPIC
        and int(str(e["position"])) > int(str(dropped["position"]))
        and getattr(decoded(e), "last_position", 0) >= int(str(dropped["position"]))
    )
    rewrite_events(ranged, lambda events: events.remove(dropped))

    assert_refused(ranged, platform, f"log position {head['position']}", "head_size")


def test_two_swapped_events_are_out_of_order(platform: Platform, ranged: Path) -> None:
    events = events_of(ranged)

    def swap(events: list[dict[str, object]]) -> None:
        events[5], events[6] = events[6], events[5]

    rewrite_events(ranged, swap)

    assert_refused(ranged, platform, f"log position {events[5]['position']}", "bundle_order")


def test_swapped_states_change_the_root(platform: Platform, ranged: Path) -> None:
    events = events_of(ranged)
    first, second = [e for e in events if e["topic"] == BATCH_TOPIC][3:5]

    def swap(events: list[dict[str, object]]) -> None:
        a, b = events.index(first), events.index(second)
        events[a]["state"], events[b]["state"] = second["state"], first["state"]
        events[a]["originator_id"], events[b]["originator_id"] = (
            second["originator_id"],
            first["originator_id"],
        )
        events[a]["originator_version"], events[b]["originator_version"] = (
            second["originator_version"],
            first["originator_version"],
        )

    rewrite_events(ranged, swap)

    code, _, err = verify(ranged, "--public-key", str(platform.public_key))
    assert code == 1
    assert "bundle verify failed at log position " in err


def test_an_altered_head_is_named(platform: Platform, ranged: Path) -> None:
    events = events_of(ranged)
    head_event = [e for e in events if e["topic"] == HEAD_TOPIC][-1]
    head = decoded(head_event)
    assert isinstance(head, TreeHeadLog.Recorded)
    forged_root = bytes(32 - len(head.root)) + bytes(b ^ 0xFF for b in head.root)

    def alter(events: list[dict[str, object]]) -> None:
        events[events.index(head_event)]["state"] = encoded(
            dataclasses.replace(head, root=forged_root)
        )

    rewrite_events(ranged, alter)

    assert_refused(ranged, platform, f"log position {head_event['position']}", "head_root")


def test_an_altered_proof_is_named(platform: Platform, ranged: Path) -> None:
    def alter(data: bytes) -> bytes:
        description = json.loads(data)
        proof = description["consistency_proof"]
        assert proof, "the range's heads differ in size"
        proof[0] = ("00" if proof[0][:2] != "00" else "11") + proof[0][2:]
        return json.dumps(description).encode()

    rewrite(ranged, "bundle.json", alter)

    assert_refused(ranged, platform, "consistency proof", "consistency_proof")


def test_an_altered_manifest_is_named(platform: Platform, ranged: Path) -> None:
    publication = next(e for e in events_of(ranged) if e["topic"] == PUBLISHED_TOPIC)
    published = decoded(publication)
    assert isinstance(published, SnapshotLog.Published)
    manifest = f"objects/{published.manifest_key}"
    rewrite(ranged, manifest, lambda data: data.replace(b'"rows"', b'"Rows"', 1))

    assert_refused(
        ranged, platform, f"log position {publication['position']}", "snapshot_manifest_digest"
    )


def test_a_forged_bundled_key_is_refused_under_the_auditors_key(
    platform: Platform, tmp_path: Path
) -> None:
    # One head, the bundle's last event: re-signed, it changes no leaf under a head, so the
    # forged bundle is whole under the forger's key.
    ranged = export(platform, tmp_path / "first.zip", 1, 1)
    forger = Ed25519PrivateKey.generate()
    heads = [e for e in events_of(ranged) if e["topic"] == HEAD_TOPIC]
    assert len(heads) == 1

    def resign(events: list[dict[str, object]]) -> None:
        for event in events:
            if event["topic"] != HEAD_TOPIC:
                continue
            head = decoded(event)
            assert isinstance(head, TreeHeadLog.Recorded)
            signed = sign_tree_head(head.tree_size, head.root, head.timestamp, forger)
            forged = dataclasses.replace(
                head, key_id=signed.head.key_id, signature=signed.signature
            )
            event["state"] = encoded(forged)

    rewrite_events(ranged, resign)
    rewrite(ranged, "node-key.pub.pem", lambda _: pem_of(forger))

    # The bundle is whole under its own key, which is why that key is no evidence...
    code, out, err = verify(ranged)
    assert code == 0, err
    assert "under the bundle's own key" in out
    # ...and the auditor's key refuses it at the first head.
    assert_refused(ranged, platform, f"log position {heads[0]['position']}", "head_signature")


def test_usage_errors_are_one_line(platform: Platform, tmp_path: Path) -> None:
    out = str(tmp_path / "b.zip")
    with pytest.raises(BaylinkCliError, match="--from 9 is after --to 3"):
        run("export-bundle", "--from", "9", "--to", "3", "--out", out, *platform.options)
    beyond = str(platform.last_covered + 1)
    with pytest.raises(BaylinkCliError, match=f"no signed tree head covers log position {beyond}"):
        run("export-bundle", "--from", "1", "--to", beyond, "--out", out, *platform.options)
    with pytest.raises(BaylinkCliError, match=r"over the bundle maximum of 20 \(--max-events\)"):
        run(
            "export-bundle", "--from", "1", "--to", "100", "--out", out, "--max-events", "20",
            *platform.options,
        )  # fmt: skip
    assert not Path(out).exists()
    with pytest.raises(BaylinkCliError, match="--bundle reads no store"):
        verify(Path(out), "--data-dir", str(tmp_path))
    for option in (["--require-timestamps"], ["--expect-head", "3:" + "00" * 32]):
        with pytest.raises(BaylinkCliError, match="--bundle checks neither timestamps"):
            verify(Path(out), *option)
    with pytest.raises(BaylinkCliError, match=f"no bundle at {out}"):
        verify(Path(out))
    Path(out).write_bytes(b"not a zip")
    with pytest.raises(BaylinkCliError, match="is not a readable zip"):
        verify(Path(out), "--public-key", str(platform.public_key))


def test_a_bad_bundle_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(b"PK not really")
    process = subprocess.run(
        [sys.executable, "-m", "baylink", "audit", "verify", "--bundle", str(bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert process.returncode == 2
    assert process.stderr.startswith(f"baylink: error: {bundle} is not a readable zip")
    assert len(process.stderr.strip().splitlines()) == 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_state_is_refused_at_or_after_its_event(
    platform: Platform, tmp_path: Path, data: st.DataObject
) -> None:
    original = tmp_path / "original.zip"
    if not original.exists():
        export(platform, original, 50, 120)
    events = events_of(original)
    index = data.draw(st.integers(0, len(events) - 1), label="event")
    state = bytearray(state_of(events[index]))
    assume(state)
    byte = data.draw(st.integers(0, len(state) - 1), label="byte")
    state[byte] ^= data.draw(st.integers(1, 255), label="mask")
    bundle = tmp_path / "changed.zip"
    shutil.copy(original, bundle)

    def change(events: list[dict[str, object]]) -> None:
        events[index]["state"] = base64.b64encode(state).decode()

    rewrite_events(bundle, change)
    report = verify_bundle(bundle, NODE_KEY.public_key())

    assert report.failure is not None
    item = report.failure.item
    assert item.startswith("log position ") or item == "consistency proof", item
    if item.startswith("log position "):
        assert int(item.removeprefix("log position ")) >= int(str(events[index]["position"]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damage_anywhere_is_a_finding_or_one_error_never_a_crash(
    platform: Platform, tmp_path: Path, data: st.DataObject
) -> None:
    original = tmp_path / "original.zip"
    if not original.exists():
        export(platform, original, 50, 120)
    with zipfile.ZipFile(original) as opened:
        names = sorted(n for n in opened.namelist() if n != "report.json")
    member = data.draw(st.sampled_from(names), label="member")
    bundle = tmp_path / "damaged.zip"
    shutil.copy(original, bundle)

    def damage(content: bytes) -> bytes:
        changed = bytearray(content)
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            at = data.draw(st.integers(0, len(changed) - 1), label="at")
            changed[at] ^= data.draw(st.integers(1, 255), label="mask")
        return bytes(changed)

    rewrite(bundle, member, damage)
    try:
        report = verify_bundle(bundle, NODE_KEY.public_key())
    except BundleUnreadableError:
        assert member == "bundle.json"
        return
    # A change can leave the meaning whole (a UUID's hex case, JSON spacing, a smaller `to`):
    # then the bundle still checks; otherwise it is refused, with an item named.
    assert report.ok or report.failure is not None


def test_a_tampered_store_exports_a_bundle_that_names_the_tampering(
    platform: Platform, tmp_path: Path
) -> None:
    url = platform.options[1]
    tamperer = StoreTamperer(url)
    try:
        row = [r for r in tamperer.rows() if r.topic == BATCH_TOPIC][40]
        with tamperer.undone(row.position):
            state = bytearray(row.state)
            state[len(state) // 2] ^= 0x01
            tamperer.set_state(row.position, bytes(state))
            out = tmp_path / "tampered.zip"
            code, stdout, stderr = run(
                "export-bundle", "--from", str(row.position), "--to", str(row.position),
                "--out", str(out), *platform.options,
            )  # fmt: skip
    finally:
        tamperer.close()

    assert code == 1
    assert "it does not verify" in stdout
    assert stderr.startswith(f"baylink: bundle verify failed at log position {row.position} (")
    with zipfile.ZipFile(out) as opened:
        failure = json.loads(opened.read("report.json"))["failure"]
    assert failure["item"] == f"log position {row.position}"


def test_a_later_start_head_that_would_skip_events_is_refused(
    platform: Platform, ranged: Path
) -> None:
    events = events_of(ranged)
    later = next(
        e for e in events if e["topic"] == HEAD_TOPIC and e["position"] != events[0]["position"]
    )
    head = decoded(later)
    assert isinstance(head, TreeHeadLog.Recorded)

    def claim(data: bytes) -> bytes:
        description = json.loads(data)
        description["start_head"]["position"] = later["position"]
        description["from"] = head.last_position + 1
        return json.dumps(description).encode()

    rewrite(ranged, "bundle.json", claim)

    assert_refused(ranged, platform, f"log position {events[0]['position']}", "bundle_range")


def test_the_same_range_exports_to_the_same_bytes(platform: Platform, tmp_path: Path) -> None:
    first = export(platform, tmp_path / "first.zip", 50, 120)
    second = export(platform, tmp_path / "second.zip", 50, 120)

    assert first.read_bytes() == second.read_bytes()


def test_a_data_dir_exports_under_its_node_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "platform"
    build_store(f"sqlite:///{data_dir / 'events.sqlite'}", LocalObjectStore(data_dir / "objects"))
    pem = NODE_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (data_dir / "node-key.pem").write_bytes(pem)
    out = tmp_path / "from-data-dir.zip"

    code, stdout, stderr = run(
        "export-bundle", "--from", "10", "--to", "40", "--out", str(out),
        "--data-dir", str(data_dir),
    )  # fmt: skip

    assert code == 0, stderr
    assert stdout.strip().endswith("verified")
    with zipfile.ZipFile(out) as opened:
        assert opened.read("node-key.pub.pem") == pem_of(NODE_KEY)
