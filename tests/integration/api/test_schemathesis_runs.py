"""schemathesis's own command line against the live API, as the administrator and as two
partners in different jurisdictions (Hong Kong, Macao), each with its seeded ids: every phase
(examples, coverage, fuzzing, and stateful sequences that follow the document's links) passes
with no failure, no error and no warning — in particular none of "missing authentication",
"missing test data" or "validation mismatch", which would mean the requests never reached the
logic behind the routes.

Each run gets a store of its own: the administrator's run revokes, withdraws and suspends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api.conftest import serving_governed
from tests.integration.api.governed import HK_DEPT, MO_DSAT
from tests.integration.api.schemathesis_runs import Run, seed_runs, write_config
from tests.support.live_server import live_server

pytestmark = pytest.mark.integration

SEED = 20261128
MAX_EXAMPLES = 10
PHASES = ("examples", "coverage", "fuzzing", "stateful")
ST = Path(sys.executable).with_name("st")


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, dict[str, Run]]]:
    """A fresh governed store served live, and the runs seeded in it."""
    with (
        serving_governed(tmp_path, rate_limit_per_second=1e6, rate_limit_burst=10**6) as served,
        live_server(served.app) as base_url,
    ):
        yield base_url, {run.name: run for run in seed_runs(served, base_url)}


def _run(run: Run, base_url: str, directory: Path, *options: str) -> dict[str, Any]:
    config = write_config(run, directory, base_url, SEED, MAX_EXAMPLES)
    report = directory / f"report-{run.name}.json"
    finished = subprocess.run(
        [str(ST), "--config-file", str(config), "run", f"{base_url}/openapi.json",
         "--no-color", "--report", "json", "--report-json-path", str(report), *options],
        capture_output=True, text=True, timeout=900, check=False, cwd=directory,
    )  # fmt: skip
    if not report.exists():
        pytest.fail(f"schemathesis wrote no report:\n{finished.stdout}\n{finished.stderr}")
    result: dict[str, Any] = json.loads(report.read_text())
    result["output"] = finished.stdout[-8000:]
    return result


@pytest.mark.parametrize("caller", ["administrator", HK_DEPT, MO_DSAT])
def test_every_phase_passes_without_warnings(
    seeded: tuple[str, dict[str, Run]], tmp_path: Path, caller: str
) -> None:
    base_url, runs = seeded
    run = runs[caller]

    report = _run(run, base_url, tmp_path)

    output = report["output"]
    assert report["exit_code"] == 0, output
    assert report["failures"] == [], output
    assert report["errors"] == [], output
    assert {name: kinds for name, kinds in report["warnings"].items() if kinds} == {}, output
    operations = report["operations"]
    assert operations["selected"] == operations["tested"] == len(run.operations), output
    assert {p: report["phases"][p]["status"] for p in PHASES} == dict.fromkeys(PHASES, "success")
    assert report["test_cases"]["generated"] >= 10 * len(run.operations)


def test_a_run_without_seeded_ids_fails_on_missing_test_data(
    seeded: tuple[str, dict[str, Run]], tmp_path: Path
) -> None:
    """The gate above can fail: ids a generator makes up find nothing, and the run says so."""
    base_url, runs = seeded
    operations = [
        "GET /v1/records/{record_id}/provenance",
        "GET /v1/subscriptions/{subscription_id}",
    ]
    unseeded = Run("unseeded", runs[HK_DEPT].token, operations, parameters={})

    report = _run(unseeded, base_url, tmp_path, "--phases", "examples,coverage,fuzzing")

    assert report["exit_code"] != 0, report["output"]
    assert set(report["warnings"]["missing_test_data"]) == set(operations), report["output"]
    assert report["failures"] == [], report["output"]
