"""Every table of every domain, for Alembic, the checks of the schema and the ORM's foreign keys.

Found, not listed: each package beside `store` that has a `models` module declares its tables on `Base`; store
imports no domain by name, so the dependencies keep pointing one way (domains → store).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from sqlalchemy import MetaData

import yibao
from yibao.store.db import Base


def collect() -> MetaData:
    """Import every `yibao.<package>.models` and answer the one metadata they all declare their tables on."""
    for found in pkgutil.iter_modules(yibao.__path__):
        if found.ispkg and importlib.util.find_spec(f"yibao.{found.name}.models") is not None:
            importlib.import_module(f"yibao.{found.name}.models")
    return Base.metadata
