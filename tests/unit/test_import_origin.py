"""Every top-level package is this repository's own: the names are generic and could be shadowed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGES = ["domain", "streams", "connectors", "storage", "api", "observability", "baylink"]


def test_the_repository_root_is_where_pyproject_is() -> None:
    assert (REPOSITORY / "pyproject.toml").is_file()
    assert 'name = "baylink"' in (REPOSITORY / "pyproject.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PACKAGES)
def test_the_package_is_imported_from_this_repository(name: str) -> None:
    package = importlib.import_module(name)

    assert package.__file__ is not None, f"{name} is a namespace package, not ours"
    location = Path(package.__file__).resolve()
    assert location == REPOSITORY / name / "__init__.py", (
        f"{name} was imported from {location}, not from {REPOSITORY}; another installed "
        "package shadows it"
    )
