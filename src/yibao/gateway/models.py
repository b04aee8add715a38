from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedText
from yibao.store.db import Base

# signing schemes a key may be used with: yibao's own HMAC-SM3 headers, Alibaba CSB, Tencent TIF
SCHEMES = ("yibao", "csb", "tif")


class GatewayClient(Base):
    """Credentials of one institution for the gateway. An institution may hold several keys.

    Secrets are stored encrypted under the master key (core/vault.py). Rotation keeps the access key
    (the HIS is configured with it) and gives it a new secret; the previous secret keeps working until
    ``previous_valid_until``, so counters can be switched over one by one.
    """

    __tablename__ = "gateway_client"
    access_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(ForeignKey("institution.fixmedins_code"), index=True)
    secret: Mapped[str] = mapped_column(EncryptedText("gateway_client.secret"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # comma-separated subset of SCHEMES; a request signed any other way is refused
    schemes: Mapped[str] = mapped_column(String(40), default="yibao")
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText("gateway_client.previous_secret"))
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the regional dialect (gateway/dialects/<name>.yaml) its HIS speaks; None: the one the request's path selects
    dialect: Mapped[str | None] = mapped_column(String(40))
    # the front server (前置机) trusted to sign for this key; None (the default): only the institution's own signature counts
    front_server: Mapped[str | None] = mapped_column(ForeignKey("front_server.name"))


class FrontServer(Base):
    """A front server (前置机) on the insurance private network that forwards hospitals' requests and signs them with its
    own secret (gateway/front.py). It is trusted only for the keys that name it, and only from its configured address."""

    __tablename__ = "front_server"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    # one IP address or a network (10.1.2.0/28): the TCP peer a forwarded request must come from
    address: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(EncryptedText("front_server.secret"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SignIn(Base):
    """An operator session opened by 9001 and closed by 9002."""

    __tablename__ = "sign_in"
    sign_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12), index=True)
    opter_no: Mapped[str] = mapped_column(String(20))
    mac: Mapped[str] = mapped_column(String(20), default="")
    ip: Mapped[str] = mapped_column(String(40), default="")
    sign_time: Mapped[datetime] = mapped_column(DateTime)
    signout_time: Mapped[datetime | None] = mapped_column(DateTime)


class GatewayMessage(Base):
    """The first answer to each request, so a retry gets it again (idempotency).

    Keyed by (institution, msgid, request): many clients build msgid from the second and a counter that restarts, so two
    different requests can share one; each is answered, and a retry (same msgid, same request) gets its own first answer.
    """

    __tablename__ = "gateway_message"
    fixmedins_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    msgid: Mapped[str] = mapped_column(String(40), primary_key=True)
    # SM3 of the canonical (infno, input), to tell a retry from a different request
    request_sm3: Mapped[str] = mapped_column(String(64), primary_key=True)
    infno: Mapped[str] = mapped_column(String(6))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # an answer to another request had this msgid when this one was stored (gateway.service.msgid_reused tells for sure)
    msgid_reused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class GatewayNonce(Base):
    """Nonces seen inside the signature window; a second use is a replay."""

    __tablename__ = "gateway_nonce"
    access_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_gateway_nonce_seen_at", "seen_at"),)
