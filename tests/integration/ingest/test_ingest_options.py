"""`baylink ingest` refuses a CRS it cannot name before it reads or publishes anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.embedded import clean_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("crs", ["WGS84", "EPSG:", "EPSG:999999"])
def test_an_unknown_crs_is_one_line_naming_the_option(tmp_path: Path, crs: str) -> None:
    source = tmp_path / "districts.geojson"
    source.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")

    result = subprocess.run(
        [
            sys.executable, "-m", "baylink", "ingest", str(source),
            "--dataset", "hk.geo.district-boundaries", "--crs", crs,
        ],
        env=clean_env(tmp_path / "baylink"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr.startswith("baylink: error: --crs: ")
    assert crs in result.stderr
    assert result.stderr.count("\n") == 1
