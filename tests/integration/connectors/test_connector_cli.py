"""`baylink connector run` refuses a bad config or a missing platform in one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.embedded import clean_env

pytestmark = pytest.mark.integration


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baylink", "connector", "run", *args],
        env=clean_env(tmp_path / "no-platform"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_config_mistake_is_one_line_naming_the_file_source_and_key(tmp_path: Path) -> None:
    config = tmp_path / "connectors.yaml"
    config.write_text(
        "sources:\n"
        "  - name: sz-speed\n"
        "    dataset: gba.traffic.sensor-readings\n"
        "    format: csv\n"
        "    location: https://data.example.org/speed.csv\n"
        "    limits: {max_bytes: lots}\n"
    )

    result = run(tmp_path, str(config), "--once")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"baylink: error: {config}: sources[0] (sz-speed).limits.max_bytes: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_without_a_running_platform_or_broker_the_run_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    config = Path(__file__).resolve().parents[3] / "examples" / "connectors.yaml"

    result = run(tmp_path, str(config))

    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("baylink: error: no broker to publish to: no baylink is running")
