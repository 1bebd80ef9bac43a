"""The page scripts (app.py and views/) hold no bare value that Streamlit's "magic" would draw.

Streamlit writes any bare expression on its own line in a page script (a string under an assignment
meant as its docstring, a leftover variable name) onto the page, on every run. Only the first string
of a module, function or class is a docstring and left alone. A string under `WITH_NAVIGATION` in
app.py once showed its sentence at the top of every page.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE_SCRIPTS = sorted([ROOT / "app.py", *(ROOT / "views").glob("*.py")])
DEFINITIONS = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def drawn_by_magic(source: str) -> list[int]:
    """Lines of bare expressions Streamlit's magic would write (not calls, not docstrings)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for i, stmt in enumerate(body):
                if not isinstance(stmt, ast.Expr) or isinstance(stmt.value, (ast.Call, ast.Await, ast.Yield,
                                                                              ast.YieldFrom)):
                    continue
                docstring = (field == "body" and i == 0 and isinstance(node, DEFINITIONS)
                             and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str))
                if not docstring:
                    lines.append(stmt.lineno)
    return lines


def test_the_check_finds_a_string_under_an_assignment_and_spares_docstrings():
    source = '"""Module."""\nX = 1\n"""About X."""\ndef f():\n    """Doc."""\n    y = 2\n    y\n'
    assert drawn_by_magic(source) == [3, 7]


@pytest.mark.parametrize("script", PAGE_SCRIPTS, ids=lambda p: p.name)
def test_no_page_script_draws_a_stray_value(script):
    assert drawn_by_magic(script.read_text()) == [], f"{script.name}: a bare value Streamlit would draw"
