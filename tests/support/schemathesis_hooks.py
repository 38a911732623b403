"""Loaded into ``schemathesis run`` (SCHEMATHESIS_HOOKS) by the API's schemathesis test.

CPython 3.11 before 3.11.8, and 3.12 before 3.12.2, keeps the AST constructor's recursion
depth in state the whole interpreter shares (python/cpython#106905): when a garbage
collection inside one thread's ``ast.parse`` lets another thread parse too, the two corrupt
each other's count and one raises ``SystemError: AST constructor recursion depth mismatch``.
``schemathesis run --workers 4`` parses in several threads (Hypothesis describes a filter's
lambda by parsing the module that defines it), so on such an interpreter a run fails at random
with an error that is not the API's. There, parses run one at a time; a fixed interpreter is
left alone. Nothing else is changed: every failure of the API is still reported.
"""

from __future__ import annotations

import ast
import sys
import threading
from functools import wraps
from typing import Any


def shares_ast_depth(version: tuple[int, int, int]) -> bool:
    return version < (3, 11, 8) or (3, 12, 0) <= version < (3, 12, 2)


def parse_one_at_a_time() -> None:
    parse, lock = ast.parse, threading.Lock()

    @wraps(parse)
    def locked_parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    ast.parse = locked_parse


if shares_ast_depth((sys.version_info.major, sys.version_info.minor, sys.version_info.micro)):
    parse_one_at_a_time()
