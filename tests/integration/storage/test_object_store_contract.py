"""What every object store promises, in a local directory and in S3 (SeaweedFS) alike.

Each store comes with a harness that knows how to damage it from outside (rewrite an
object's bytes, write around the store, leave a half-finished put) and how to fetch a URL
it hands out; the tests themselves only use the ObjectStore port.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minio.error import S3Error

from storage.errors import (
    CorruptObjectError,
    InvalidObjectKeyError,
    ObjectKeyConflictError,
    ObjectNotFoundError,
)
from storage.object_store import ObjectInfo, ObjectStore
from storage.object_store_local import LocalObjectStore
from storage.object_store_s3 import S3ObjectStore
from tests.support.services import S3Endpoint

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


class SimulatedCrashError(Exception):
    """Stands in for the process dying at this point."""


@dataclass(frozen=True)
class StoreHarness:
    """A store under test and what the tests need to do to it from outside."""

    store: ObjectStore
    rewrite_bytes: Callable[[str, bytes], None]
    """Replace an object's bytes behind the store's back, keeping its recorded digest."""
    write_around: Callable[[str, bytes], None]
    """Write an object without going through the store (so with no recorded digest)."""
    leave_unfinished: Callable[[str, bytes], None]
    """What a writer that died in the middle of a put leaves behind."""
    fetch: Callable[[str], bytes]
    """The bytes behind a URL from url_for."""
    examples: int
    """How many examples a property test can afford against this store."""


def local_harness(root: Path, monkeypatch: pytest.MonkeyPatch) -> StoreHarness:
    store = LocalObjectStore(root)

    def path_of(key: str) -> Path:
        return store.root.joinpath(*key.split("/"))

    def rewrite_bytes(key: str, data: bytes) -> None:
        path_of(key).write_bytes(data)  # in place: same file, same sidecar

    def write_around(key: str, data: bytes) -> None:
        path_of(key).parent.mkdir(parents=True, exist_ok=True)
        path_of(key).write_bytes(data)

    def leave_unfinished(key: str, data: bytes) -> None:
        target = path_of(key)
        real_replace = os.replace

        def crash_before_the_data_lands(
            source: str | os.PathLike[str], destination: str | os.PathLike[str]
        ) -> None:
            if Path(destination) == target:
                raise SimulatedCrashError
            real_replace(source, destination)

        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", crash_before_the_data_lands)
            with pytest.raises(SimulatedCrashError):
                store.put(key, data)
        # A real crash would also leave its temporary file behind.
        target.with_name(f".{target.name}.0123456789abcdef.tmp").write_bytes(data[:7])

    def fetch(url: str) -> bytes:
        parts = urlsplit(url)
        assert parts.scheme == "file"
        return Path(unquote(parts.path)).read_bytes()

    return StoreHarness(store, rewrite_bytes, write_around, leave_unfinished, fetch, 100)


def s3_harness(seaweed: S3Endpoint) -> StoreHarness:
    bucket = f"baylink-test-{uuid.uuid4().hex[:12]}"
    store = S3ObjectStore(
        seaweed.endpoint, bucket, seaweed.access_key, seaweed.secret_key, region=seaweed.region
    )
    store.ensure_bucket()
    raw = seaweed.minio()

    def rewrite_bytes(key: str, data: bytes) -> None:
        metadata = raw.stat_object(bucket, key).metadata
        assert metadata is not None
        recorded = metadata["x-amz-meta-sha256"]
        raw.put_object(bucket, key, io.BytesIO(data), len(data), metadata={"sha256": recorded})

    def write_around(key: str, data: bytes) -> None:
        raw.put_object(bucket, key, io.BytesIO(data), len(data))

    def leave_unfinished(key: str, data: bytes) -> None:
        # A multipart upload whose writer died before completing it.
        digest = hashlib.sha256(data).hexdigest()
        upload_id = raw._create_multipart_upload(bucket, key, {"x-amz-meta-sha256": digest})
        raw._upload_part(bucket, key, data, None, upload_id, 1)

    def fetch(url: str) -> bytes:
        response = httpx.get(url, timeout=30.0)
        response.raise_for_status()
        return response.content

    return StoreHarness(store, rewrite_bytes, write_around, leave_unfinished, fetch, 15)


@pytest.fixture(params=["local", "s3"])
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StoreHarness:
    if request.param == "local":
        return local_harness(tmp_path / "objects", monkeypatch)
    seaweed: S3Endpoint = request.getfixturevalue("seaweed")
    return s3_harness(seaweed)


@pytest.fixture
def store(harness: StoreHarness) -> ObjectStore:
    return harness.store


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MANIFEST = "snapshots/road-speed/0001/manifest.json"


# --- writing and reading ---------------------------------------------------------------------


def test_a_put_object_reads_back_byte_for_byte_with_its_size_and_sha256(
    store: ObjectStore,
) -> None:
    data = b'{"dataset": "road-speed", "files": []}'

    info = store.put(MANIFEST, data, content_type="application/json")

    assert info == ObjectInfo(MANIFEST, len(data), sha256(data))
    assert store.get(MANIFEST) == data
    assert store.stat(MANIFEST) == info


def test_a_put_replaces_the_object_under_the_same_key(store: ObjectStore) -> None:
    store.put(MANIFEST, b"first version")

    info = store.put(MANIFEST, b"the second, longer version")

    assert store.get(MANIFEST) == b"the second, longer version"
    assert store.stat(MANIFEST) == info
    assert list(store.list("snapshots/")) == [info]


def test_an_empty_object_is_an_object(store: ObjectStore) -> None:
    info = store.put("snapshots/road-speed/0001/_SUCCESS", b"")

    assert info == ObjectInfo("snapshots/road-speed/0001/_SUCCESS", 0, sha256(b""))
    assert store.get("snapshots/road-speed/0001/_SUCCESS") == b""


def test_every_byte_value_survives_the_round_trip(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4 + bytes(reversed(range(256)))

    info = store.put("snapshots/binary.bin", data)

    assert store.get("snapshots/binary.bin") == data
    assert info.sha256 == sha256(data)


def test_a_20_mib_object_round_trips(store: ObjectStore) -> None:
    data = os.urandom(20 * MIB)

    info = store.put("snapshots/road-speed/0001/part-0.parquet", data)

    assert info == ObjectInfo("snapshots/road-speed/0001/part-0.parquet", 20 * MIB, sha256(data))
    assert store.get("snapshots/road-speed/0001/part-0.parquet") == data
    assert store.stat("snapshots/road-speed/0001/part-0.parquet") == info


def test_keys_may_hold_spaces_unicode_and_url_characters(store: ObjectStore) -> None:
    key = "snapshots/深圳 road speed/hk+mo %20 #1?v=2 ü.parquet"

    info = store.put(key, b"payload")

    assert store.get(key) == b"payload"
    assert list(store.list("snapshots/深圳")) == [info]


def test_any_bytes_round_trip(harness: StoreHarness) -> None:
    store = harness.store

    @settings(
        max_examples=harness.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.binary(max_size=64 * 1024))
    def round_trip(data: bytes) -> None:
        info = store.put("property/object.bin", data)
        assert info == ObjectInfo("property/object.bin", len(data), sha256(data))
        assert store.get("property/object.bin") == data

    round_trip()


_SEGMENT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/\\"
    ),
    min_size=1,
    max_size=20,
).filter(lambda segment: not segment.startswith("."))


def test_any_valid_key_round_trips_and_is_listed(harness: StoreHarness) -> None:
    store = harness.store

    @settings(
        max_examples=harness.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(segments=st.lists(_SEGMENT, min_size=1, max_size=4))
    def round_trip(segments: list[str]) -> None:
        key = "keys/" + "/".join(segments)
        info = store.put(key, key.encode())
        try:
            assert store.get(key) == key.encode()
            assert info in list(store.list("keys/"))
        finally:
            store.delete(key)

    round_trip()


# --- absent, stat, list, delete --------------------------------------------------------------


def test_an_absent_key_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="snapshots/none"):
        store.get("snapshots/none")
    with pytest.raises(ObjectNotFoundError, match="snapshots/none"):
        store.stat("snapshots/none")


def test_a_folder_of_other_keys_is_not_an_object(store: ObjectStore) -> None:
    store.put("snapshots/road-speed/0001/manifest.json", b"{}")

    with pytest.raises(ObjectNotFoundError):
        store.get("snapshots/road-speed")
    with pytest.raises(ObjectNotFoundError):
        store.stat("snapshots/road-speed/0001")


def test_stat_gives_size_and_sha256_without_the_bytes(store: ObjectStore) -> None:
    data = b"x" * 1000 + b"y"
    store.put(MANIFEST, data)

    assert store.stat(MANIFEST) == ObjectInfo(MANIFEST, 1001, sha256(data))


def test_list_gives_the_objects_under_a_prefix_in_key_order(store: ObjectStore) -> None:
    keys = [
        "snapshots/road-speed/0002/part-0.parquet",
        "snapshots/road-speed/0001/part-1.parquet",
        "snapshots/road-speed/0001/part-0.parquet",
        "snapshots/road-speed-hk/0001/part-0.parquet",
        "snapshots/road-speed/0001/manifest.json",
        "snapshots/road-speed/0010/part-0.parquet",
        "snapshots/road-speed/0001/zz.parquet",
        "snapshots/road-speed/0001/ü.parquet",
        "snapshotsX",
        "audit/evidence.json",
    ]
    infos = {key: store.put(key, key.encode()) for key in keys}

    def listed(prefix: str) -> list[str]:
        return [info.key for info in store.list(prefix)]

    assert listed("") == sorted(keys)
    assert listed("snapshots/road-speed/") == sorted(
        key for key in keys if key.startswith("snapshots/road-speed/")
    )
    # A prefix is a plain string prefix: it need not end at a '/'. In UTF-8 order '-' < '/'.
    assert listed("snapshots/road-speed") == [
        "snapshots/road-speed-hk/0001/part-0.parquet",
        "snapshots/road-speed/0001/manifest.json",
        "snapshots/road-speed/0001/part-0.parquet",
        "snapshots/road-speed/0001/part-1.parquet",
        "snapshots/road-speed/0001/zz.parquet",
        "snapshots/road-speed/0001/ü.parquet",
        "snapshots/road-speed/0002/part-0.parquet",
        "snapshots/road-speed/0010/part-0.parquet",
    ]
    assert listed("snapshots/road-speed/0001/part-") == [
        "snapshots/road-speed/0001/part-0.parquet",
        "snapshots/road-speed/0001/part-1.parquet",
    ]
    assert listed("snapshots") == sorted(key for key in keys if key.startswith("snapshots"))
    assert listed("nothing/here/") == []
    assert list(store.list("audit/")) == [infos["audit/evidence.json"]]


def test_list_shows_only_complete_objects(harness: StoreHarness) -> None:
    store = harness.store
    finished = store.put("snapshots/road-speed/0001/part-0.parquet", b"complete")
    harness.leave_unfinished("snapshots/road-speed/0001/part-1.parquet", b"half written data")
    harness.write_around("snapshots/road-speed/0001/part-2.parquet", b"no recorded digest")

    assert list(store.list("snapshots/")) == [finished]
    with pytest.raises(ObjectNotFoundError):
        store.get("snapshots/road-speed/0001/part-1.parquet")
    with pytest.raises(ObjectNotFoundError):
        store.stat("snapshots/road-speed/0001/part-1.parquet")
    with pytest.raises(CorruptObjectError, match=r"part-2\.parquet"):
        store.get("snapshots/road-speed/0001/part-2.parquet")
    with pytest.raises(CorruptObjectError, match=r"part-2\.parquet"):
        store.stat("snapshots/road-speed/0001/part-2.parquet")


def test_a_put_after_an_unfinished_one_completes_the_object(harness: StoreHarness) -> None:
    store = harness.store
    harness.leave_unfinished(MANIFEST, b"half")

    info = store.put(MANIFEST, b"whole")

    assert store.get(MANIFEST) == b"whole"
    assert list(store.list()) == [info]


def test_delete_removes_the_object_and_deleting_again_is_fine(store: ObjectStore) -> None:
    store.put(MANIFEST, b"{}")
    store.put("snapshots/road-speed/0001/part-0.parquet", b"PAR1")

    store.delete(MANIFEST)
    store.delete(MANIFEST)
    store.delete("snapshots/never-written")

    with pytest.raises(ObjectNotFoundError):
        store.get(MANIFEST)
    assert [info.key for info in store.list()] == ["snapshots/road-speed/0001/part-0.parquet"]


def test_readers_never_see_a_torn_or_unverifiable_object_while_writers_replace_it(
    harness: StoreHarness,
) -> None:
    store = harness.store
    versions = [bytes([n]) * (1000 + 997 * n) for n in range(4)]
    digests = {sha256(version) for version in versions}
    store.put(MANIFEST, versions[0])
    puts_per_writer = harness.examples // 2
    writing = threading.Event()
    writing.set()
    seen: list[bytes] = []
    failures: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for n in range(puts_per_writer):
                store.put(MANIFEST, versions[(n + offset) % len(versions)])
        except BaseException as error:
            failures.append(error)

    def read() -> None:
        try:
            while writing.is_set():
                seen.append(store.get(MANIFEST))
                assert store.stat(MANIFEST).sha256 in digests
                assert [info.sha256 in digests for info in store.list("snapshots/")] == [True]
        except BaseException as error:
            failures.append(error)

    writers = [threading.Thread(target=write, args=(offset,)) for offset in range(3)]
    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    for thread in readers:
        thread.join()

    assert failures == []
    assert seen
    assert set(seen) <= set(versions)
    assert sha256(store.get(MANIFEST)) in digests


# --- integrity ------------------------------------------------------------------------------


def test_bytes_changed_behind_the_stores_back_are_reported_as_corrupt(
    harness: StoreHarness,
) -> None:
    store = harness.store
    original = b"PAR1 row groups PAR1"
    store.put("snapshots/road-speed/0001/part-0.parquet", original)
    tampered = b"PAR1 row gr0ups PAR1"
    harness.rewrite_bytes("snapshots/road-speed/0001/part-0.parquet", tampered)

    with pytest.raises(CorruptObjectError) as raised:
        store.get("snapshots/road-speed/0001/part-0.parquet")

    message = str(raised.value)
    assert "snapshots/road-speed/0001/part-0.parquet" in message
    assert sha256(original) in message
    assert sha256(tampered) in message


def test_a_truncated_object_is_reported_as_corrupt(harness: StoreHarness) -> None:
    store = harness.store
    store.put(MANIFEST, b'{"files": ["part-0.parquet"]}')
    harness.rewrite_bytes(MANIFEST, b'{"files": [')

    with pytest.raises(CorruptObjectError, match=r"manifest\.json"):
        store.get(MANIFEST)


# --- keys and URLs --------------------------------------------------------------------------

INVALID_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("snapshots/../../etc/passwd", id="dot-dot"),
    pytest.param("..", id="only-dot-dot"),
    pytest.param("./manifest.json", id="dot"),
    pytest.param("snapshots//manifest.json", id="empty-segment"),
    pytest.param("snapshots/", id="trailing-slash"),
    pytest.param("snapshots\\manifest.json", id="backslash"),
    pytest.param("snapshots/.manifest.json.sha256", id="hidden-segment"),
    pytest.param("snapshots/nul\x00.json", id="nul"),
    pytest.param("snapshots/line\nbreak", id="control-character"),
    pytest.param("snapshots/" + "x" * 201, id="segment-too-long"),
    pytest.param("/".join(["abcdefghi"] * 103), id="key-too-long"),
    pytest.param("snapshots/\udcff", id="lone-surrogate"),
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_an_invalid_key_is_refused_by_every_operation(store: ObjectStore, key: str) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.put(key, b"data"),
        lambda: store.get(key),
        lambda: store.stat(key),
        lambda: store.delete(key),
        lambda: store.url_for(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidObjectKeyError, match="object key") as raised:
            operation()
        assert isinstance(raised.value, ValueError)
    assert list(store.list()) == []


@pytest.mark.parametrize("prefix", ["/etc", "../", "snapshots//", "a\\b", "./x/"])
def test_a_prefix_no_key_can_start_with_is_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidObjectKeyError, match="prefix"):
        list(store.list(prefix))


def test_a_url_for_an_object_serves_its_bytes(harness: StoreHarness) -> None:
    store = harness.store
    data = bytes(range(256)) * 3
    key = "snapshots/深圳 road speed/#1 part-0.parquet"
    store.put(key, data)

    url = store.url_for(key, expires_seconds=60)

    assert harness.fetch(url) == data


@pytest.mark.parametrize("seconds", [0, -1, 7 * 24 * 3600 + 1])
def test_a_url_cannot_expire_before_it_is_made_or_after_a_week(
    store: ObjectStore, seconds: int
) -> None:
    store.put(MANIFEST, b"{}")

    with pytest.raises(ValueError, match="expires_seconds"):
        store.url_for(MANIFEST, expires_seconds=seconds)


# --- what only one store needs --------------------------------------------------------------


def test_the_local_store_keeps_the_old_object_when_a_put_dies_before_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = local_harness(tmp_path / "objects", monkeypatch)
    old = harness.store.put(MANIFEST, b"old manifest")

    harness.leave_unfinished(MANIFEST, b"new manifest")

    assert harness.store.get(MANIFEST) == b"old manifest"
    assert list(harness.store.list()) == [old]


def test_the_local_store_serves_the_new_object_when_a_put_dies_after_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.put(MANIFEST, b"old manifest")
    real_replace = os.replace
    replaced: list[str] = []

    def crash_after_the_data_lands(
        source: str | os.PathLike[str], destination: str | os.PathLike[str]
    ) -> None:
        if len(replaced) == 2:  # the sidecar, the data, then the final sidecar rewrite
            raise SimulatedCrashError
        replaced.append(os.fspath(destination))
        real_replace(source, destination)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash_after_the_data_lands)
        with pytest.raises(SimulatedCrashError):
            store.put(MANIFEST, b"new manifest, longer")

    assert store.get(MANIFEST) == b"new manifest, longer"
    assert store.stat(MANIFEST) == ObjectInfo(
        MANIFEST, len(b"new manifest, longer"), sha256(b"new manifest, longer")
    )
    assert [info.key for info in store.list()] == [MANIFEST]


def test_the_local_store_cannot_hold_a_key_and_keys_under_it(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.put("snapshots/road-speed", b"an object")
    store.put("archive/road-speed/0001", b"under a folder")

    with pytest.raises(ObjectKeyConflictError, match="snapshots/road-speed/0001"):
        store.put("snapshots/road-speed/0001", b"needs a folder")
    with pytest.raises(ObjectKeyConflictError, match="archive/road-speed"):
        store.put("archive/road-speed", b"is a folder")
    assert [info.key for info in store.list()] == [
        "archive/road-speed/0001",
        "snapshots/road-speed",
    ]


def test_the_local_store_keeps_objects_as_plain_files_for_pyarrow(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")

    store.put("snapshots/road-speed/0001/part-0.parquet", b"PAR1")

    assert (tmp_path / "objects/snapshots/road-speed/0001/part-0.parquet").read_bytes() == b"PAR1"
    visible = [
        path.name
        for path in (tmp_path / "objects/snapshots/road-speed/0001").iterdir()
        if not path.name.startswith((".", "_"))
    ]
    assert visible == ["part-0.parquet"]


def test_the_s3_store_has_the_server_check_the_sha256_on_upload(seaweed: S3Endpoint) -> None:
    harness = s3_harness(seaweed)
    assert isinstance(harness.store, S3ObjectStore)
    data = b"checked by the server"

    harness.store.put(MANIFEST, data)

    stored = seaweed.minio().stat_object(
        harness.store.bucket, MANIFEST, extra_headers={"x-amz-checksum-mode": "ENABLED"}
    )
    assert stored.metadata is not None
    assert stored.metadata["x-amz-meta-sha256"] == sha256(data)
    assert stored.metadata["x-amz-checksum-sha256"] == (
        base64.b64encode(hashlib.sha256(data).digest()).decode()
    )


def test_the_s3_store_reads_a_missing_bucket_as_empty(seaweed: S3Endpoint) -> None:
    bucket = f"baylink-test-{uuid.uuid4().hex[:12]}"
    store = S3ObjectStore(seaweed.endpoint, bucket, seaweed.access_key, seaweed.secret_key)

    assert list(store.list()) == []
    with pytest.raises(ObjectNotFoundError):
        store.get(MANIFEST)
    with pytest.raises(ObjectNotFoundError):
        store.stat(MANIFEST)
    store.delete(MANIFEST)
    assert not seaweed.minio().bucket_exists(bucket)


def test_the_s3_store_creates_its_bucket_when_a_put_finds_none(
    seaweed: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"baylink-test-{uuid.uuid4().hex[:12]}"
    store = S3ObjectStore(seaweed.endpoint, bucket, seaweed.access_key, seaweed.secret_key)
    client = store._client
    real_put_object = client.put_object

    def put_object_as_aws_does(*args: Any, **kwargs: Any) -> Any:
        # SeaweedFS creates a bucket on PUT; AWS and MinIO answer NoSuchBucket.
        if not client.bucket_exists(bucket):
            response = urllib3.HTTPResponse(status=404)
            raise S3Error(response, "NoSuchBucket", "no bucket", bucket, None, None)
        return real_put_object(*args, **kwargs)

    monkeypatch.setattr(client, "put_object", put_object_as_aws_does)

    info = store.put(MANIFEST, b"{}")

    assert seaweed.minio().bucket_exists(bucket)
    assert store.get(MANIFEST) == b"{}"
    assert list(store.list()) == [info]
