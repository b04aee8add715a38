"""Views parse, call a service and shape the answer: they never open a transaction or import what stores.

Checked on the source (not by importing it), so an import inside a function or under TYPE_CHECKING counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "yibao"
VIEWS = [SRC / "people" / "views.py", SRC / "people" / "bill_views.py", SRC / "people" / "credit_views.py",
         SRC / "console" / "views.py"]


def _forbidden_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "sqlalchemy" or parts[-1] == "models" or name == "yibao.store" or name.startswith("yibao.store.")


def database_uses(source: str) -> list[str]:
    """Each import of sqlalchemy, ``yibao.store`` or a ``*.models`` module, and each call of ``unit_of_work``, with its line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _forbidden_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            # `from yibao.credential import models` names the module in the imported names, not in `module`
            names = [module] + [f"{module}.{a.name}" for a in node.names]
            if node.level == 0 and any(_forbidden_module(n) for n in names):
                found.append(f"{node.lineno}: from {module} import {', '.join(a.name for a in node.names)}")
            elif node.level and any(_forbidden_module(n.lstrip(".")) for n in names if n.lstrip(".")):
                found.append(f"{node.lineno}: relative import of {module or '.'}")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called == "unit_of_work":
                found.append(f"{node.lineno}: unit_of_work()")
    return found


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_views_touch_no_database(path: Path) -> None:
    assert database_uses(path.read_text(encoding="utf-8")) == [], f"{path.relative_to(SRC)} uses the database; move it to service.py"


@pytest.mark.parametrize("source", [
    "import sqlalchemy",
    "from sqlalchemy.orm import Session",
    "from yibao.credential.models import Channel",
    "from yibao.credential import models",
    "import yibao.registry.models as m",
    "from yibao.store.db import Database",
    "from .models import X",
    "def f(request):\n    with request.app.state.db.unit_of_work() as s:\n        pass",
    "def f():\n    if True:\n        from yibao.registry.models import Person",
])
def test_the_check_finds_each_kind_of_use(source: str) -> None:
    assert database_uses(source)


def test_the_check_lets_services_and_domains_be_imported() -> None:
    assert database_uses("from yibao.people import service\nfrom yibao.credential import service as credential\n"
                         "from yibao.credential.realperson import demo_face\nservice.profile(db, token)") == []
