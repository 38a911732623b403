"""`baylink ingest --structure PATH` reads the DSD file and passes it to the parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from baylink.cli import app
from baylink.errors import BaylinkCliError


def test_ingest_reads_the_structure_file_before_it_connects_anywhere(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-structure.xml"

    arguments = ["ingest", "data.xml", "--dataset", "hk.economic.sdmx-observations"]
    options = ["--format", "sdmx", "--structure", str(missing), "--data-dir", str(tmp_path)]

    result = CliRunner().invoke(app, [*arguments, *options])

    assert isinstance(result.exception, BaylinkCliError)
    assert f"cannot read {missing}" in str(result.exception)


@pytest.mark.parametrize("name", ["sdmx", "indicator-csv"])
def test_ingest_help_names_the_economic_formats_and_the_structure_option(name: str) -> None:
    result = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert name in result.output
    assert "--structure" in result.output
