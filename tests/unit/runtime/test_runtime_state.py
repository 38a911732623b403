"""runtime.json: what `baylink up` publishes for the other commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from baylink.runtime.errors import RuntimeStateCorruptError, RuntimeStateNotFoundError
from baylink.runtime.state import RuntimeState, resolve_data_dir, state_path


def a_state() -> RuntimeState:
    return RuntimeState(
        broker_bootstrap="127.0.0.1:9092",
        event_store_url="sqlite:////tmp/baylink/events.sqlite",
        object_store_url="file:///tmp/baylink/objects",
        api_url="http://127.0.0.1:8000",
        pids={"supervisor": 10, "broker": 11, "worker": 12, "api": 13},
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_state_survives_a_round_trip_through_runtime_json(tmp_path: Path) -> None:
    written = a_state()

    path = written.write(tmp_path)

    assert path == tmp_path / "runtime.json"
    assert RuntimeState.read(tmp_path) == written


def test_removed_state_reads_as_no_running_baylink(tmp_path: Path) -> None:
    a_state().write(tmp_path)

    RuntimeState.remove(tmp_path)
    RuntimeState.remove(tmp_path)

    with pytest.raises(RuntimeStateNotFoundError, match="start one with `baylink up`"):
        RuntimeState.read(tmp_path)


@pytest.mark.parametrize("content", ["not json", '{"api_url": "http://x"}', "[]"])
def test_unreadable_state_is_reported_not_guessed(tmp_path: Path, content: str) -> None:
    state_path(tmp_path).write_text(content)

    with pytest.raises(RuntimeStateCorruptError, match=r"runtime\.json"):
        RuntimeState.read(tmp_path)


def test_data_dir_option_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAYLINK_DATA_DIR", str(tmp_path / "from-env"))

    assert resolve_data_dir(tmp_path / "from-option") == tmp_path / "from-option"
    assert resolve_data_dir() == tmp_path / "from-env"


def test_data_dir_defaults_to_var_baylink_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAYLINK_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)

    assert resolve_data_dir() == tmp_path.resolve() / "var" / "baylink"
