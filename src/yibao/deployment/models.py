from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class PlatformSetting(Base):
    """Facts about this deployment that must travel with its data (e.g. ``mode``: demo or production)."""

    __tablename__ = "platform_setting"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
