"""Tables of the vendors' console: the message log, platform staff, console sessions and sign-in challenges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class ConsoleMessage(Base):
    """One national-interface call of an institution whose signature verified: what it sent, what it was answered.

    Written by the gateway in the call's own transaction (a refusal: in the refusal's), read by the console.
    Bounded: the gateway's housekeeping keeps the last ``YIBAO_CONSOLE_KEEP`` per institution and
    ``YIBAO_CONSOLE_DAYS`` days (console/service.py). Warnings are computed when the console reads a row, never here.
    """

    __tablename__ = "console_message"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    access_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime)
    infno: Mapped[str] = mapped_column(String(6))
    msgid: Mapped[str] = mapped_column(String(40))
    # the signing scheme the call used: HMAC-SM3 (yibao's own), CSB or TIF
    scheme: Mapped[str] = mapped_column(String(10))
    # the regional dialect the request was written in ("" national): warnings read it translated, as the gateway did
    dialect: Mapped[str] = mapped_column(String(20), default="")
    infcode: Mapped[int] = mapped_column(Integer)
    err_msg: Mapped[str] = mapped_column(String(200))
    # server time from the first byte handled until the answer was ready (the commit follows it)
    duration_us: Mapped[int] = mapped_column(Integer)
    ip: Mapped[str] = mapped_column(String(64))
    # the body exactly as received (bytes: a GBK body stays GBK), cut at REQUEST_CAP; request_size is the whole size
    request: Mapped[bytes] = mapped_column(LargeBinary)
    request_size: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    response_size: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_console_message_fixmedins_code_id", "fixmedins_code", "id"), Index("ix_console_message_at", "at"))


class ConsoleStaff(Base):
    """A platform staff member who may read every institution's messages (`yibao console staff-add`)."""

    __tablename__ = "console_staff"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    pwd_hash: Mapped[bytes] = mapped_column(LargeBinary)
    pwd_salt: Mapped[bytes] = mapped_column(LargeBinary)
    # scrypt parameters the hash was made with (credential.service.ScryptParams.text)
    pwd_params: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ConsoleSession(Base):
    """A signed-in console user: an institution (by one of its access keys) or a staff member. The token itself is
    never stored, only its SM3, so a copy of the database opens no session."""

    __tablename__ = "console_session"
    token_sm3: Mapped[str] = mapped_column(String(64), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12), default="")
    access_key: Mapped[str] = mapped_column(String(64), default="")
    staff: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ConsoleChallenge(Base):
    """A one-time challenge an institution's browser answers with HMAC-SHA256 under the key's secret (sign-in)."""

    __tablename__ = "console_challenge"
    challenge: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_key: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
