"""Feature code speaks only the OpenTelemetry API; the SDK and exporters are set up by
observability/ at entry points, so a deployment chooses where telemetry goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.module_imports import imports_in_fresh_process, imports_of

REPOSITORY = Path(__file__).resolve().parents[2]
FEATURE_PACKAGES = ["domain", "streams", "connectors", "storage", "api"]
SET_UP_ONLY = ("opentelemetry.sdk", "opentelemetry.exporter", "prometheus_client")
# Serving the registry the Prometheus reader fills is exposition, not set-up.
ALLOWED = {("api/metrics.py", "prometheus_client")}


@pytest.mark.parametrize("package", FEATURE_PACKAGES)
def test_feature_code_never_imports_the_sdk_or_an_exporter(package: str) -> None:
    found = imports_in_fresh_process(sorted((REPOSITORY / package).rglob("*.py")))
    offending = sorted(
        f"{path.relative_to(REPOSITORY)}: {name}"
        for path, names in found.items()
        for name in names
        if name.startswith(SET_UP_ONLY)
        and (str(path.relative_to(REPOSITORY)), name.split(".")[0]) not in ALLOWED
    )

    assert offending == []


def test_the_check_sees_an_sdk_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from opentelemetry.sdk.trace import TracerProvider\nimport os\n")

    assert imports_of(module) == {"opentelemetry.sdk.trace", "os"}
    assert imports_in_fresh_process([module]) == {module: {"opentelemetry.sdk.trace", "os"}}
