"""Absolute imports of Python files, read in a fresh interpreter.

CPython 3.11 keeps one AST-conversion depth counter per interpreter; another thread
that parses at the same moment (3.11's traceback formatting does) makes ``ast.parse``
raise ``SystemError: AST constructor recursion depth mismatch``. A test process full
of worker threads is such a place, so the parsing runs in a process of its own.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imports_in_fresh_process(paths: list[Path]) -> dict[Path, set[str]]:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.module_imports", *map(str, paths)],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    found: dict[str, list[str]] = json.loads(completed.stdout)
    return {Path(path): set(names) for path, names in found.items()}


if __name__ == "__main__":
    print(json.dumps({path: sorted(imports_of(Path(path))) for path in sys.argv[1:]}))
