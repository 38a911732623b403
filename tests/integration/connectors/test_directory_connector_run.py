"""`baylink connector run` watching a directory: each settled file once, across restarts."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.integration.connectors.conftest import FedPlatform
from tests.support.connector import write_config
from tests.support.platform import reading_rows, wait_until, write_csv

pytestmark = pytest.mark.integration


def test_files_dropped_in_a_watched_directory_are_ingested_once_across_restarts(
    fed: FedPlatform, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    config = write_config(
        tmp_path / "connectors.yaml",
        {
            "name": "hk-drops",
            "dataset": fed.readings.id,
            "format": "csv",
            "location": "incoming/",
            "glob": "*.csv",
            "schedule": {"interval": 0.2, "settle": 1.0},
        },
    )
    runner = fed.connector(str(config))
    runner.start()
    try:
        # Written elsewhere and renamed into place, the way writers should deliver.
        staged = write_csv(tmp_path / "a.csv.part", reading_rows(20, prefix="dir-a"))
        staged.rename(incoming / "a.csv")
        runner.wait_for_output("hk-drops: published 20 records")
        # Written in place in two steps, a pause shorter than the settle time between them:
        # must not be read half-way.
        rows_b = reading_rows(30, prefix="dir-b")
        whole = write_csv(tmp_path / "b-whole.csv", rows_b).read_bytes()
        with (incoming / "b.csv").open("wb") as stream:
            stream.write(whole[: len(whole) // 2])
            stream.flush()
            time.sleep(0.4)
            stream.write(whole[len(whole) // 2 :])
        runner.wait_for_output("hk-drops: published 30 records")
        (incoming / "notes.txt").write_text("not a reading")
        first_exit = runner.stop()

        write_csv(incoming / "c.csv", reading_rows(15, prefix="dir-c"))
        stat = (incoming / "a.csv").stat()
        os.utime(incoming / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        runner.start()
        runner.wait_for_output("hk-drops: published 15 records")
        wait_until(lambda: fed.audit().accepted_records >= 65, 60, what="65 records")
        second_exit = runner.stop()
    finally:
        runner.kill()

    output = runner.output()
    assert (first_exit, second_exit) == (0, 0)
    assert output.count("hk-drops: published") == 3
    assert "hk-drops: 1 payloads, 15 records, 0 rejected payloads, 1 unchanged" in output
    audit = fed.audit()
    assert audit.accepted_records == audit.distinct_record_ids == 65
    assert audit.rejected == 0
    assert audit.duplicates == 0


def test_a_failing_source_is_reported_and_retried_while_the_others_keep_feeding(
    fed: FedPlatform, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_csv(incoming / "a.csv", reading_rows(12, prefix="beside-a-failure"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead_url = f"http://127.0.0.1:{closed_port}/feed.csv"
    config = write_config(
        tmp_path / "connectors.yaml",
        {
            "name": "dead-feed",
            "dataset": fed.readings.id,
            "format": "csv",
            "location": dead_url,
            "retry": {"base": 0.05, "cap": 0.1, "attempts": 2},
        },
        {
            "name": "hk-drops",
            "dataset": fed.readings.id,
            "format": "csv",
            "location": str(incoming) + "/",
            "schedule": {"interval": 0.2, "settle": 0.2},
        },
    )

    once = fed.env.cli("connector", "run", str(config), "--once", check=False)
    runner = fed.connector(str(config))
    runner.start()
    try:
        runner.wait_for_output("dead-feed: retrying in", count=2)
        write_csv(incoming / "b.csv", reading_rows(8, prefix="beside-a-failure-b"))
        runner.wait_for_output("hk-drops: published 8 records")
        exit_code = runner.stop()
    finally:
        runner.kill()

    assert once.returncode == 2
    assert "hk-drops: published 12 records" in once.stdout
    [error] = once.stderr.strip().splitlines()
    assert error.startswith(f"baylink: error: 1 of 2 sources failed: dead-feed: {dead_url}: ")
    assert "ConnectError" in error
    assert exit_code == 0
    wait_until(lambda: fed.audit().accepted_records >= 20, 60, what="20 records")
    assert fed.audit().accepted_records == fed.audit().distinct_record_ids == 20
