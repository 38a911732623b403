"""Economic statistics through `baylink up`: SDMX (with its DSD given by --structure) and an
indicator table, ingested with the CLI into the shipped definitions and read back through the
query API, with regions taken from the area codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from baylink.runtime.ports import free_port
from tests.support.embedded import (
    baylink,
    clean_env,
    running_platform,
    served_records,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "connectors" / "datasets"
SDMX = REPO / "tests" / "fixtures" / "sdmx"
INDICATORS = REPO / "tests" / "fixtures" / "indicators"
OBSERVATIONS = "hk.economic.sdmx-observations"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    data_dir = tmp_path_factory.mktemp("economic") / "baylink"
    port = free_port()
    with running_platform(data_dir, port):
        for name in ("sdmx-observations", "indicator-observations"):
            baylink(data_dir, "dataset", "register", str(DATASETS / f"{name}.yaml"))
        yield data_dir, port


def _ingest(data_dir: Path, *args: str) -> dict[str, object]:
    outcome = json.loads(baylink(data_dir, "ingest", *args, "--wait", "--json").stdout)
    assert isinstance(outcome, dict)
    return outcome


def _records(platform: tuple[Path, int], dataset: str) -> list[dict[str, object]]:
    return served_records(*platform, dataset)


def test_structure_specific_sdmx_is_read_by_the_dsd_given_and_generic_is_the_same_records(
    platform: tuple[Path, int],
) -> None:
    data_dir, _port = platform
    specific = str(SDMX / "ng-ts-ss.xml")

    as_sdmx = ("--dataset", OBSERVATIONS, "--format", "sdmx")

    first = _ingest(data_dir, specific, *as_sdmx, "--structure", str(SDMX / "ng-structure.xml"))
    again = _ingest(data_dir, str(SDMX / "ng-ts.xml"), *as_sdmx)

    assert (first["accepted"], first["rejected"]) == (12, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 12)
    chf = [r for r in _records(platform, OBSERVATIONS) if r["series_key"] == "M.CHF.EUR.SP00.E"]
    assert [(r["time_period"], r["period_start"], r["value"]) for r in chf] == [
        ("2010-08", "2010-08-01T00:00:00Z", 1.3413),
        ("2010-09", "2010-09-01T00:00:00Z", 1.3089),
        ("2010-10", "2010-10-01T00:00:00Z", 1.3452),
    ]


def test_structure_specific_sdmx_without_its_dsd_is_refused_in_one_line(
    platform: tuple[Path, int],
) -> None:
    data_dir, _ = platform
    command = ["ingest", str(SDMX / "ng-ts-ss.xml"), "--dataset", OBSERVATIONS, "--format", "sdmx"]
    result = subprocess.run(
        [sys.executable, "-m", "baylink", *command, "--wait"],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode != 0
    assert "--structure PATH" in result.stderr
    assert "(recorded as a rejected payload)" in result.stderr


def test_areas_naming_a_region_give_records_that_region(
    platform: tuple[Path, int], tmp_path: Path
) -> None:
    data_dir, _port = platform
    table = tmp_path / "gdp.csv"
    table.write_text(
        "STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,INDICATOR,TIME_PERIOD,OBS_VALUE\n"
        "dataflow,HK:GDP(1.0),I,HK,NGDP,2019,2.8\n"
        "dataflow,HK:GDP(1.0),I,MO,NGDP,2019,4.4\n"
        "dataflow,HK:GDP(1.0),I,CN-GD,NGDP,2019,10.8\n"
        "dataflow,HK:GDP(1.0),I,US,NGDP,2019,21.4\n"
    )

    outcome = _ingest(data_dir, str(table), "--dataset", OBSERVATIONS, "--format", "sdmx")

    assert (outcome["accepted"], outcome["rejected"]) == (4, 0)
    records = _records(platform, OBSERVATIONS)
    gdp = {r["area"]: r["region"] for r in records if r["structure"] == "HK:GDP(1.0)"}
    assert gdp == {"HK": "hk", "MO": "mo", "CN-GD": "gd", "US": "hk"}


def test_an_indicator_table_is_stored_one_record_per_period(platform: tuple[Path, int]) -> None:
    data_dir, _port = platform

    table = str(INDICATORS / "ecb-usd-eur-monthly-long.csv")

    outcome = _ingest(
        data_dir, table, "--dataset", "hk.economic.indicators", "--format", "indicator-csv"
    )

    assert (outcome["accepted"], outcome["rejected"]) == (24, 0)
    assert len(_records(platform, "hk.economic.indicators")) == 24
