"""Watching a directory: settled files only, each version once, temporary names never."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from connectors.errors import SourceError
from connectors.watch import DirectoryWatch, FileCheckpoint, WatchedFile


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watch(directory: Path, clock: Clock, pattern: str = "*.csv", **kwargs: int) -> DirectoryWatch:
    return DirectoryWatch(
        directory, pattern, max_bytes=kwargs.get("max_bytes", 1024), settle_seconds=2, clock=clock
    )


def taken_after(items: list[WatchedFile]) -> dict[str, FileCheckpoint]:
    return {item.name: item.checkpoint for item in items}


def test_a_new_file_is_taken_once_it_has_settled(tmp_path: Path) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock)
    (tmp_path / "a.csv").write_bytes(b"sensor_id\ns1\n")

    assert watcher.scan({}) == []
    clock.now = 1.0
    assert watcher.scan({}) == []
    clock.now = 2.5
    [item] = watcher.scan({})

    assert item.name == "a.csv"
    assert item.payload is not None
    assert item.payload.data == b"sensor_id\ns1\n"
    assert item.payload.uri == (tmp_path / "a.csv").absolute().as_uri()
    assert item.checkpoint.sha256 == hashlib.sha256(b"sensor_id\ns1\n").hexdigest()
    assert item.error is None


def test_a_file_still_growing_is_not_read_half_way(tmp_path: Path) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock)
    path = tmp_path / "a.csv"
    path.write_bytes(b"sensor_id\n")
    watcher.scan({})
    for step in range(1, 4):
        clock.now = step * 3.0
        with path.open("ab") as stream:
            stream.write(f"s{step}\n".encode())
        assert watcher.scan({}) == [], f"taken while still being written (step {step})"

    clock.now = 10.0  # one second after the last write was seen: not settled yet
    assert watcher.scan({}) == []
    clock.now = 11.0
    [item] = watcher.scan({})

    assert item.payload is not None
    assert item.payload.data == b"sensor_id\ns1\ns2\ns3\n"


def test_a_taken_file_is_not_taken_again_until_it_changes(tmp_path: Path) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock)
    path = tmp_path / "a.csv"
    path.write_bytes(b"sensor_id\ns1\n")
    watcher.scan({})
    clock.now = 3.0
    taken = taken_after(watcher.scan({}))

    clock.now = 10.0
    assert watcher.scan(taken) == []
    clock.now = 20.0
    assert watcher.scan(taken) == []

    path.write_bytes(b"sensor_id\ns1\ns2\n")
    watcher.scan(taken)
    clock.now = 30.0
    [changed] = watcher.scan(taken)
    assert changed.payload is not None
    assert changed.payload.data == b"sensor_id\ns1\ns2\n"


def test_a_file_touched_without_changing_its_bytes_gives_a_new_checkpoint_and_no_payload(
    tmp_path: Path,
) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock)
    path = tmp_path / "a.csv"
    path.write_bytes(b"sensor_id\ns1\n")
    watcher.scan({})
    clock.now = 3.0
    taken = taken_after(watcher.scan({}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))

    watcher.scan(taken)
    clock.now = 6.0
    [touched] = watcher.scan(taken)

    assert touched.payload is None
    assert touched.error is None
    assert touched.checkpoint.mtime_ns == stat.st_mtime_ns + 5_000_000_000
    assert touched.checkpoint.sha256 == taken["a.csv"].sha256


def test_temporary_names_are_never_taken_and_a_rename_into_place_is(tmp_path: Path) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock, pattern="*")
    for name in (".a.csv", "a.csv.part", "a.csv.tmp"):
        (tmp_path / name).write_bytes(b"sensor_id\n")
    watcher.scan({})
    clock.now = 10.0
    assert watcher.scan({}) == []

    (tmp_path / "a.csv.part").rename(tmp_path / "a.csv")
    watcher.scan({})
    clock.now = 13.0
    assert [item.name for item in watcher.scan({})] == ["a.csv"]


def test_only_files_matching_the_glob_are_taken_including_in_subfolders(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "b.csv").write_bytes(b"x\n")
    (tmp_path / "a.csv").write_bytes(b"x\n")
    (tmp_path / "notes.txt").write_bytes(b"x\n")
    watcher = watch(tmp_path, clock, pattern="**/*.csv")

    watcher.scan({})
    clock.now = 3.0

    assert sorted(item.name for item in watcher.scan({})) == ["a.csv", "day1/b.csv"]


def test_a_file_over_the_limit_is_refused_with_a_reason_and_checkpointed_as_refused(
    tmp_path: Path,
) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock, max_bytes=10)
    (tmp_path / "big.csv").write_bytes(b"x" * 11)
    watcher.scan({})
    clock.now = 3.0

    [item] = watcher.scan({})

    assert item.payload is None
    assert item.error is not None
    assert "big.csv holds 11 bytes; the limit is 10 bytes" in str(item.error)
    assert item.checkpoint.refused == "too-large"
    assert watcher.scan(taken_after([item])) == []


def test_files_are_handed_on_oldest_first(tmp_path: Path) -> None:
    clock = Clock()
    watcher = watch(tmp_path, clock)
    for offset, name in enumerate(["c.csv", "a.csv", "b.csv"]):
        path = tmp_path / name
        path.write_bytes(name.encode())
        os.utime(path, ns=(0, 1_700_000_000_000_000_000 + offset))
    watcher.scan({})
    clock.now = 3.0

    assert [item.name for item in watcher.scan({})] == ["c.csv", "a.csv", "b.csv"]


def test_a_missing_directory_is_a_source_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot watch .*missing: not a directory"):
        watch(tmp_path / "missing", Clock()).scan({})


def test_a_checkpoint_round_trips_through_its_stored_form() -> None:
    checkpoint = FileCheckpoint(10, 123, "ab" * 32, None)
    assert FileCheckpoint.from_dict(checkpoint.as_dict()) == checkpoint
    assert FileCheckpoint.from_dict({"size": "10"}) is None
