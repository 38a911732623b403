"""Differential check: RecordValidator's inlined fast path against its rule-by-rule path.

``RecordValidator._normalise`` accepts the common case inline and hands everything else to
``_normalise_general`` (the validator as it was before it was optimised, commit 42d644e, and
where rule changes belong). This runs one validator as is and one whose ``_normalise`` *is*
the general path, feeds both the same rows (valid ones and many kinds of bad ones: wrong
types, out of range, NaN, infinities, naive and future times, ISO strings, missing, unknown
and ``__invalid__`` fields, other mappings, non-mappings, odd regions) and requires the same
accepted records (values and their types), the same rejections (index, reason, message,
excerpt) and the same exceptions. Exits non-zero on the first difference.

    python benchmarks/check_validator.py [--rows N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

# Run as a file (python benchmarks/check_validator.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workload import load_dataset, make_rows
from domain.dataset import DatasetDefinition
from domain.record import RecordValidator
from domain.region import RegionRegistry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

OTHER_DATASETS: list[dict[str, Any]] = [
    {
        "id": "test.bounds",
        "kind": "economic",
        "owner_region": "hk",
        "title": {"en": "bounds"},
        "time_field": "at",
        "key_fields": ["code", "at", "flag"],
        "fields": [
            {"name": "code", "type": "int64", "min": -5, "max": 1e18},
            {"name": "at", "type": "timestamp"},
            {"name": "flag", "type": "bool", "required": True},
            {"name": "ratio", "type": "float64", "min": 0.5},
            {"name": "big", "type": "float64", "max": 1e308},
            {"name": "free", "type": "float64"},
            {"name": "label", "type": "string", "required": True},
            {"name": "count", "type": "int64"},
        ],
    },
    {
        "id": "test.floatkey",
        "kind": "geospatial",
        "owner_region": "mo",
        "title": {"en": "float key"},
        "time_field": "t",
        "key_fields": ["x", "t"],
        "geometry": {"lat": "y", "lon": "x", "crs": "EPSG:4326"},
        "fields": [
            {"name": "t", "type": "timestamp"},
            {"name": "x", "type": "float64"},
            {"name": "y", "type": "float64"},
        ],
    },
]


class GeneralOnly(RecordValidator):
    """The same validator with the fast path switched off."""

    def _normalise(self, row: object, default_region: str, latest: int) -> list[object]:
        return self._normalise_general(row, default_region, latest)


class DictSubclass(dict[str, Any]):
    pass


class IntSubclass(int):
    pass


class StrSubclass(str):
    __slots__ = ()


def odd_values(rng: random.Random) -> list[Any]:
    naive = datetime(2025, 5, 1, 8, 30)
    return [
        None,
        True,
        False,
        0,
        1,
        -1,
        -6,
        2**63 - 1,
        2**63,
        -(2**63) - 1,
        10**400,
        IntSubclass(3),
        0.0,
        -0.0,
        0.5,
        0.4999,
        3.0,
        2.5,
        1e18,
        1.0000000000000002e18,
        1e308,
        1.7976931348623157e308,
        math.inf,
        -math.inf,
        math.nan,
        "",
        "text",
        StrSubclass("sub"),
        "x" * 65_536,
        "x" * 65_537,
        "2025-05-01T08:30:00+08:00",
        "2025-05-01T08:30:00",
        "not a time",
        "2099-01-01T00:00:00Z",
        naive,
        naive.replace(tzinfo=UTC),
        naive.replace(tzinfo=timezone(timedelta(hours=8))),
        NOW + timedelta(minutes=4),
        NOW + timedelta(minutes=6),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        b"bytes",
        [1, 2],
        {"a": 1},
        rng.uniform(-200, 200),
        rng.randrange(-1000, 1000),
    ]


def mutate(row: dict[str, Any], names: list[str], rng: random.Random, odd: list[Any]) -> Any:
    choice = rng.randrange(14)
    out: Any = dict(row)
    if choice <= 5:
        out[rng.choice(names)] = rng.choice(odd)
    elif choice == 6:
        out.pop(rng.choice(names), None)
    elif choice == 7:
        out[rng.choice(["extra", "__invalid__", "Region", "regionx"])] = rng.choice(odd)
    elif choice == 8:
        out["region"] = rng.choice(
            ["hk", "mo", "gd-shenzhen", "xx", "", None, 5, StrSubclass("hk")]
        )
    elif choice == 9:
        wrap: list[Callable[[dict[str, Any]], Any]] = [
            OrderedDict,
            MappingProxyType,
            DictSubclass,
            lambda r: list(r.items()),
            lambda r: "a string",
        ]
        out = rng.choice(wrap)(out)
    elif choice == 10:
        for name in rng.sample(names, k=min(3, len(names))):
            out[name] = rng.choice(odd)
    elif choice == 11:
        out["region"] = ["unhashable"]
    # 12, 13: unchanged (valid)
    return out


def row_for(dataset: DatasetDefinition, rng: random.Random, i: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for spec in dataset.fields:
        kind = spec.type.value
        if kind == "string":
            row[spec.name] = f"v{i % 97}"
        elif kind == "int64":
            row[spec.name] = rng.randrange(0, 1000)
        elif kind == "float64":
            row[spec.name] = round(rng.uniform(0.5, 80.0), 3)
        elif kind == "bool":
            row[spec.name] = rng.random() < 0.5
        else:
            row[spec.name] = NOW - timedelta(seconds=i)
    return row


def comparable(value: Any) -> Any:
    """Values with their types, so 1 and 1.0 and True differ; NaN equals NaN."""
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def outcome(validator: Any, rows: list[Any], region: str) -> Any:
    try:
        result = validator.validate(rows, region, NOW)
    except Exception as error:
        return ("raised", type(error).__name__, str(error))
    rejected = [
        (r.index, r.reason.value, r.message, r.record_id, r.excerpt) for r in result.rejected
    ]
    return ("ok", comparable(result.accepted), rejected)


def check(dataset: DatasetDefinition, rows: list[Any], region: str, batch: int) -> int:
    regions = RegionRegistry.default()
    fast = RecordValidator(dataset, regions)
    slow = GeneralOnly(dataset, regions)
    differences = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        got, expected = outcome(fast, chunk, region), outcome(slow, chunk, region)
        if got != expected:
            differences += 1
            if expected[0] == "ok" and got[0] == "ok":
                # Narrow down to the first row that differs.
                for row in chunk:
                    if outcome(fast, [row], region) != outcome(slow, [row], region):
                        print(f"{dataset.id}: differs on {row!r}", file=sys.stderr)
                        print(f"  fast path: {outcome(fast, [row], region)}", file=sys.stderr)
                        print(f"  general:   {outcome(slow, [row], region)}", file=sys.stderr)
                        break
            else:
                print(f"{dataset.id}: {got!r}\n  != {expected!r}", file=sys.stderr)
            if differences > 3:
                break
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    odd = odd_values(rng)
    datasets = [load_dataset(), *(DatasetDefinition.from_dict(d) for d in OTHER_DATASETS)]
    total = 0
    checked = 0
    for dataset in datasets:
        names = list(dataset.field_names)
        if dataset.id == datasets[0].id:
            base = make_rows(args.rows, start=NOW - timedelta(days=3))
        else:
            base = [row_for(dataset, rng, i) for i in range(args.rows)]
        valid = base[: args.rows // 4]
        mutated = [mutate(r, names, rng, odd) for r in base[args.rows // 4 :]]
        for region in ("hk", "gd-shenzhen"):
            # Batches of valid rows, and batches mixing every kind of bad row.
            total += check(dataset, valid, region, 1000)
            total += check(dataset, mutated, region, 50)
            # One row per batch too, so an exception from one row is compared on its own.
            total += check(dataset, mutated[:3000], region, 1)
            checked += len(valid) + len(mutated) + 3000
    if total:
        print(f"FAIL: {total} batches differ", file=sys.stderr)
        return 1
    print(f"ok: the fast path and the general path agree on {checked} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
