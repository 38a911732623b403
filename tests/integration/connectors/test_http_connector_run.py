"""`baylink connector run` polling a local HTTP feed into a running platform's store."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.connector_checkpoints import ConnectorCheckpoints
from tests.integration.connectors.conftest import FedPlatform
from tests.support.connector import write_config
from tests.support.feed_server import RunningFeed, ScriptedFailure, feed_server
from tests.support.platform import reading_rows, wait_until, write_csv

pytestmark = pytest.mark.integration


def csv_of(tmp_path: Path, count: int, prefix: str) -> bytes:
    return write_csv(tmp_path / f"{prefix}.csv", reading_rows(count, prefix=prefix)).read_bytes()


def config_for(tmp_path: Path, fed: FedPlatform, feed: RunningFeed, **extra: object) -> Path:
    source = {
        "name": "sz-feed",
        "dataset": fed.readings.id,
        "format": "csv",
        "location": feed.url,
        "schedule": {"interval": 0.3},
        "retry": {"base": 0.05, "cap": 0.2, "attempts": 4},
        **extra,
    }
    return write_config(tmp_path / "connectors.yaml", source)


def stored(fed: FedPlatform, accepted: int) -> None:
    wait_until(lambda: fed.audit().accepted_records >= accepted, 60, what=f"{accepted} records")


def test_a_restarted_poll_takes_only_what_is_new_and_the_store_holds_each_record_once(
    fed: FedPlatform, tmp_path: Path
) -> None:
    with feed_server() as feed:
        feed.state.body = csv_of(tmp_path, 100, "first")
        config = config_for(tmp_path, fed, feed)

        first = fed.env.cli("connector", "run", str(config), "--once")
        stored(fed, 100)
        batches_after_first = fed.audit().batches
        first_etag = feed.state.etag
        second = fed.env.cli("connector", "run", str(config), "--once")
        unchanged_statuses = list(feed.state.statuses)
        batches_after_second = fed.audit().batches
        feed.state.body += csv_of(tmp_path, 50, "second").split(b"\n", 1)[1]
        third = fed.env.cli("connector", "run", str(config), "--once")
        stored(fed, 150)

    assert "sz-feed: published 100 records" in first.stdout
    assert "sz-feed: 0 payloads, 0 records, 0 rejected payloads, 1 unchanged" in second.stdout
    assert unchanged_statuses == [200, 304]
    assert "if-none-match" not in feed.state.requests[0]
    assert feed.state.requests[1]["if-none-match"] == first_etag
    assert batches_after_second == batches_after_first
    assert "sz-feed: published 150 records" in third.stdout
    audit = fed.audit()
    assert audit.accepted_records == audit.distinct_record_ids == 150
    assert audit.duplicates == 100
    assert audit.rejected == 0


def test_a_crash_between_publish_and_checkpoint_re_publishes_and_the_store_drops_the_repeats(
    fed: FedPlatform, tmp_path: Path
) -> None:
    with feed_server() as feed:
        feed.state.body = csv_of(tmp_path, 40, "crash")
        config = config_for(tmp_path, fed, feed)
        fed.env.cli("connector", "run", str(config), "--once")
        stored(fed, 40)
        # What a crash after the broker's ack and before the checkpoint write leaves behind.
        checkpoints = ConnectorCheckpoints(fed.env.event_store_url)
        checkpoints.put("sz-feed", "", {})
        checkpoints.close()

        again = fed.env.cli("connector", "run", str(config), "--once")
        wait_until(lambda: fed.audit().duplicates >= 40, 60, what="the repeats to be seen")

    assert "sz-feed: published 40 records" in again.stdout
    assert feed.state.statuses == [200, 200]
    audit = fed.audit()
    assert audit.accepted_records == audit.distinct_record_ids == 40
    assert audit.duplicates == 40


def test_server_errors_are_retried_and_the_payload_is_taken_once_the_feed_recovers(
    fed: FedPlatform, tmp_path: Path
) -> None:
    with feed_server() as feed:
        feed.state.body = csv_of(tmp_path, 30, "recovering")
        feed.state.failures = [ScriptedFailure(503), ScriptedFailure(502)]
        result = fed.env.cli("connector", "run", str(config_for(tmp_path, fed, feed)), "--once")
        stored(fed, 30)

    assert feed.state.statuses == [503, 502, 200]
    assert "sz-feed: published 30 records" in result.stdout
    assert fed.audit().accepted_records == 30


def test_a_feed_failing_every_attempt_fails_the_pass_in_one_line_and_publishes_nothing(
    fed: FedPlatform, tmp_path: Path
) -> None:
    with feed_server() as feed:
        feed.state.body = csv_of(tmp_path, 5, "down")
        feed.state.failures = [ScriptedFailure(503)] * 4
        result = fed.env.cli(
            "connector", "run", str(config_for(tmp_path, fed, feed)), "--once", check=False
        )

    assert result.returncode == 2
    assert feed.state.statuses == [503] * 4
    [error] = result.stderr.strip().splitlines()
    assert error == (
        f"baylink: error: 1 of 1 sources failed: sz-feed: {feed.url}: HTTP 503 Service Unavailable"
    )
    assert fed.audit().batches == 0


def test_a_payload_over_the_size_limit_is_refused_and_nothing_is_published(
    fed: FedPlatform, tmp_path: Path
) -> None:
    with feed_server() as feed:
        feed.state.body = csv_of(tmp_path, 50, "big")
        config = config_for(tmp_path, fed, feed, limits={"max_bytes": 1000})
        result = fed.env.cli("connector", "run", str(config), "--once", check=False)

    assert result.returncode == 2
    assert (
        f"sz-feed: {feed.url} sends {len(feed.state.body)} bytes; the limit is 1000 bytes"
        in result.stderr
    )
    assert fed.audit().batches == 0


def test_a_running_connector_polls_until_sigterm_and_resumes_where_it_stopped(
    fed: FedPlatform, tmp_path: Path
) -> None:
    with feed_server() as feed:
        feed.state.body = csv_of(tmp_path, 20, "live")
        runner = fed.connector(str(config_for(tmp_path, fed, feed)))
        runner.start()
        try:
            runner.wait_for_output("sz-feed: published 20 records")
            feed.state.body += csv_of(tmp_path, 10, "live-more").split(b"\n", 1)[1]
            runner.wait_for_output("sz-feed: published 30 records")
            stored(fed, 30)
            first_exit = runner.stop()
            requests_before_restart = len(feed.state.requests)

            runner.start()
            wait_until(
                lambda: len(feed.state.requests) >= requests_before_restart + 3,
                60,
                what="three polls after the restart",
            )
            second_exit = runner.stop()
        finally:
            runner.kill()

    after_restart = feed.state.statuses[requests_before_restart:]
    assert (first_exit, second_exit) == (0, 0)
    assert "stopping: finishing the payloads in hand" in runner.output()
    assert set(after_restart) == {304}
    assert runner.output().count("sz-feed: published") == 2
    audit = fed.audit()
    assert audit.accepted_records == audit.distinct_record_ids == 30
