"""Schema migrations (Alembic), run programmatically so `yibao db upgrade` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``; on PostgreSQL, also make sure settlements and postings have this year's and next
    year's partitions (yibao/store/partitions.py), so a running node never falls back on the DEFAULT partition."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if revision == "head":
        from yibao.store.partitions import ensure_years

        ensure_years(engine)


def is_current(engine: Engine) -> bool:
    """True when the schema is at the newest migration (an administrative command can run on it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads


def is_empty(engine: Engine) -> bool:
    """True when the schema has never been created (first start)."""
    return "person" not in inspect(engine).get_table_names()


def reset(engine: Engine) -> None:
    """Drop every table (demo reseed) and create the schema again."""
    from sqlalchemy import text

    from yibao.store.metadata import collect

    collect().drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
