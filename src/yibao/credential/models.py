"""Credential tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedBytes, EncryptedText
from yibao.store.db import Base


class Channel(Base):
    """An activation channel: the national app, a local app, WeChat, Alipay, a bank. Each signs its calls with its own key."""

    __tablename__ = "ec_channel"
    chnl_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    chnl_name: Mapped[str] = mapped_column(String(100))
    # national_app | local_app | wechat | alipay | bank
    kind: Mapped[str] = mapped_column(String(20))
    secret: Mapped[str] = mapped_column(EncryptedText("ec_channel.secret"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Credential(Base):
    """A person's activated e-credential, with the consumption password (scrypt) and its lockout."""

    __tablename__ = "ec_credential"
    ec_index_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"), unique=True)
    chnl_id: Mapped[str] = mapped_column(ForeignKey("ec_channel.chnl_id"))
    # active | revoked
    status: Mapped[str] = mapped_column(String(10), default="active")
    activated_at: Mapped[datetime] = mapped_column(DateTime)
    # minors' credentials are held by a guardian; None = the person holds it
    holder_psn_no: Mapped[str | None] = mapped_column(String(30))
    pwd_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    pwd_salt: Mapped[bytes | None] = mapped_column(LargeBinary)
    # the hash's own parameters ("scrypt:n=16384,r=8,p=1"), so they can be raised without breaking old hashes
    pwd_params: Mapped[str | None] = mapped_column(String(60))
    pwd_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class Device(Base):
    """A phone (or app install) that shows codes; revoking it (lost phone) kills its codes at once."""

    __tablename__ = "ec_device"
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"), index=True)
    chnl_id: Mapped[str] = mapped_column(ForeignKey("ec_channel.chnl_id"))
    # short number carried inside codes (keeps codes small)
    device_no: Mapped[int] = mapped_column(Integer, unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(10), default="active")
    registered_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class FamilyBinding(Base):
    """亲情账户: a holder may show codes, see records and pay for a bound member."""

    __tablename__ = "ec_family"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    holder_psn_no: Mapped[str] = mapped_column(String(30), index=True)
    member_psn_no: Mapped[str] = mapped_column(String(30), index=True)
    # 03 child, 04 parent, 02 spouse (hshld_rlts, from the holder's point of view)
    relation: Mapped[str] = mapped_column(String(2))
    # pending (awaiting the member's approval) | active | revoked
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    # who removed it (holder or member): a binding the member removed is only re-made with the member's approval
    removed_by: Mapped[str | None] = mapped_column(String(30))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("holder_psn_no", "member_psn_no"),)


class QrKey(Base):
    """Keys that seal QR codes (SM4 + HMAC-SM3), rotated; old keys stay to decode codes still alive."""

    __tablename__ = "ec_qr_key"
    kid: Mapped[int] = mapped_column(Integer, primary_key=True)
    enc_key: Mapped[bytes] = mapped_column(EncryptedBytes("ec_qr_key.enc_key"))
    mac_key: Mapped[bytes] = mapped_column(EncryptedBytes("ec_qr_key.mac_key"))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class UsedCode(Base):
    """Display codes already decoded: the same code again is a screenshot or a copy."""

    __tablename__ = "ec_used_code"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12))


class VisitToken(Base):
    """The ecToken a decoded code turns into: valid at one institution for the visit's window and a bounded number of uses."""

    __tablename__ = "ec_token"
    ec_token: Mapped[str] = mapped_column(String(50), primary_key=True)
    psn_no: Mapped[str] = mapped_column(String(30))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    business_type: Mapped[str] = mapped_column(String(5))
    device_id: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    max_uses: Mapped[int] = mapped_column(Integer)
    # the patient confirmed paying from the personal account in the app (password or face)
    pay_authorized_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_ec_token_psn_no", "psn_no"),)


class UserSession(Base):
    """A signed-in session of the people's app; only a hash of the bearer token is stored."""

    __tablename__ = "ec_session"
    token_sm3: Mapped[str] = mapped_column(String(64), primary_key=True)
    psn_no: Mapped[str] = mapped_column(String(30), index=True)
    device_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class RateCounter(Base):
    """Attempts per bucket (e.g. ``signin:ip:1.2.3.4``) in the current fixed window; shared by every worker."""

    __tablename__ = "rate_counter"
    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime)
    hits: Mapped[int] = mapped_column(Integer, default=0)
