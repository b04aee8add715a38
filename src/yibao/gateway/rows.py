"""Typed rows the gateway reads on every call (`yibao.store.sql`)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class SignInRow(msgspec.Struct, gc=False):
    """sign_in: fixmedins_code, sign_time, signout_time."""

    fixmedins_code: str
    sign_time: datetime
    signout_time: datetime | None


class StoredAnswer(msgspec.Struct, gc=False):
    """gateway_message: request_sm3, response."""

    request_sm3: str
    response: str
