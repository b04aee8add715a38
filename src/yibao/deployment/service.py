"""The deployment's mode.

A database is in production mode unless it was seeded as a demo (`yibao serve --demo`,
`YIBAO_DEMO=1`, `yibao demo`). The mode is stored in the database, not taken from the
environment of whoever starts the server, so a production database cannot be switched into
demo behaviour (demo face checks, demo endpoints, relaxed durability) by an environment variable.
"""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.deployment.models import PlatformSetting

DEMO = "demo"
PRODUCTION = "production"


def mode(session: Session) -> str:
    value = session.scalar(select(PlatformSetting.value).where(PlatformSetting.key == "mode"))
    return DEMO if value == DEMO else PRODUCTION


def set_mode(session: Session, value: str) -> None:
    if value not in (DEMO, PRODUCTION):
        raise ValueError(f"unknown mode {value!r}")
    session.merge(PlatformSetting(key="mode", value=value, updated_at=clock.now()))
    session.flush()


def mode_of(engine: Engine) -> str:
    """The mode of a database that may not have the table yet (a new one is production)."""
    if "platform_setting" not in inspect(engine).get_table_names():
        return PRODUCTION
    with Session(engine) as session:
        return mode(session)
