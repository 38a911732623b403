"""Partners, whitelist and agreements driven from the command line, as an administrator would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.embedded import clean_env

pytestmark = pytest.mark.e2e

DATASETS = Path(__file__).parents[1] / "fixtures" / "datasets"


def _run(tmp_path: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [
            sys.executable, "-m", "baylink", *args,
            "--event-store", f"sqlite:///{tmp_path / 'events.sqlite'}",
        ],
        env=clean_env(tmp_path / "unused"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert (result.returncode == 0) is ok, result.stderr
    return result


def _write(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_an_agreement_is_set_up_cut_by_the_whitelist_and_revoked(tmp_path: Path) -> None:
    _run(tmp_path, "dataset", "register", str(DATASETS / "sensor-readings.yaml"))
    added = json.loads(
        _run(tmp_path, "partner", "add", "--region", "hk", "--name", "Transport Department",
             "--clearance", "internal", "--json").stdout
    )  # fmt: skip
    assert added["partner_id"] == "hk-transport-department"
    assert added["key"].startswith(f"blk_{added['key_id']}_")
    rule = _write(
        tmp_path / "rule.yaml",
        {
            "rule_id": "cn-hk-traffic",
            "source_jurisdiction": "CN",
            "destination_jurisdiction": "HK",
            "dataset_kind": "traffic",
            "max_classification": "internal",
            "purposes": ["traffic-management"],
            "legal_basis": "GBA-SC-2026-0001",
            "valid_from": "2026-01-01T00:00:00+08:00",
        },
    )
    assert "whitelist version 2" in _run(tmp_path, "whitelist", "add", str(rule)).stdout
    terms = _write(
        tmp_path / "agreement.yaml",
        {
            "agreement_id": "sz-hk-2026",
            "provider_region": "gd-shenzhen",
            "consumer_partner": "hk-transport-department",
            "datasets": ["gba.traffic.sensor-readings"],
            "purpose": "traffic-management",
            "valid_from": "2026-01-01T00:00:00+00:00",
            "fields": {"gba.traffic.sensor-readings": ["sensor_id", "observed_at", "speed"]},
        },
    )
    _run(tmp_path, "agreement", "propose", str(terms), "--by", "gd-shenzhen")
    for step in ("approve", "accept", "activate"):
        _run(tmp_path, "agreement", step, "sz-hk-2026")
    listed = json.loads(_run(tmp_path, "agreement", "list", "--json").stdout)
    assert [(a["agreement_id"], a["state"], a["whitelist_rules"]) for a in listed] == [
        ("sz-hk-2026", "active", ["cn-hk-traffic"])
    ]

    dry = _run(tmp_path, "whitelist", "withdraw", "cn-hk-traffic", "--dry-run").stdout
    assert "would cut 1 agreements" in dry
    assert "sz-hk-2026 on gba.traffic.sensor-readings" in dry
    _run(tmp_path, "whitelist", "withdraw", "cn-hk-traffic", "--reason", "filing lapsed")
    rules = json.loads(_run(tmp_path, "whitelist", "list", "--json").stdout)
    assert rules == {"version": 3, "rules": []}
    refused = _run(tmp_path, "agreement", "suspend", "sz-hk-2026", ok=False)
    assert refused.stderr.strip() == "baylink: error: say why the agreement is suspended"
    _run(tmp_path, "agreement", "revoke", "sz-hk-2026", "--reason", "contract ended")
    shown = json.loads(_run(tmp_path, "agreement", "show", "sz-hk-2026").stdout)
    assert [step[0] for step in shown["history"]] == [
        "proposed", "approved", "accepted", "active", "revoked",
    ]  # fmt: skip


def test_bad_governance_files_are_one_clear_line(tmp_path: Path) -> None:
    bad_rule = _write(
        tmp_path / "rule.yaml",
        {"rule_id": "x", "source_jurisdiction": "CN", "destination_jurisdiction": "HK",
         "dataset_kind": "traffic", "max_classification": "restricted", "purposes": ["p"],
         "legal_basis": "b", "valid_from": "2026-01-01T00:00:00+00:00"},
    )  # fmt: skip
    result = _run(tmp_path, "whitelist", "add", str(bad_rule), ok=False)
    assert result.stderr.count("\n") == 1
    assert "restricted data never leaves its jurisdiction" in result.stderr
    missing = _run(tmp_path, "agreement", "propose", str(tmp_path / "nope.yaml"), ok=False)
    assert missing.stderr.strip() == f"baylink: error: {tmp_path / 'nope.yaml'}: no such file"
    unknown = _run(tmp_path, "agreement", "approve", "nope", ok=False)
    assert unknown.stderr.strip() == "baylink: error: no agreement 'nope'"
