"""Feature code speaks only the OpenTelemetry API; the SDK and exporters are set up by
observability/ at entry points, so a deployment chooses where telemetry goes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
FEATURE_PACKAGES = ["domain", "streams", "connectors", "storage", "api"]
SET_UP_ONLY = ("opentelemetry.sdk", "opentelemetry.exporter", "prometheus_client")
# Serving the registry the Prometheus reader fills is exposition, not set-up.
ALLOWED = {("api/metrics.py", "prometheus_client")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", FEATURE_PACKAGES)
def test_feature_code_never_imports_the_sdk_or_an_exporter(package: str) -> None:
    offending = sorted(
        f"{path.relative_to(REPOSITORY)}: {name}"
        for path in (REPOSITORY / package).rglob("*.py")
        for name in _imports(path)
        if name.startswith(SET_UP_ONLY)
        and (str(path.relative_to(REPOSITORY)), name.split(".")[0]) not in ALLOWED
    )

    assert offending == []


def test_the_check_sees_an_sdk_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from opentelemetry.sdk.trace import TracerProvider\nimport os\n")

    assert _imports(module) == {"opentelemetry.sdk.trace", "os"}
