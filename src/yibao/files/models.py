from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class StoredFile(Base):
    """A file made by the platform (catalogue download) or uploaded by an institution."""

    __tablename__ = "stored_file"
    file_qury_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    filename: Mapped[str] = mapped_column(String(100))
    # the institution that uploaded it; None for platform-made files anyone signed in may fetch
    owner_code: Mapped[str | None] = mapped_column(String(12))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sm3: Mapped[str] = mapped_column(String(64))
    data_cnt: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    dld_end_time: Mapped[date] = mapped_column(Date)
