"""Typed rows of e-credential tables read on the counter's path (`yibao.store.sql`)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class DeviceRow(msgspec.Struct, gc=False):
    """ec_device: device_id, psn_no, chnl_id, device_no, status."""

    device_id: str
    psn_no: str
    chnl_id: str
    device_no: int
    status: str


class CredentialRow(msgspec.Struct, gc=False):
    """ec_credential: ec_index_no, chnl_id, status."""

    ec_index_no: str
    chnl_id: str
    status: str


class TokenRow(msgspec.Struct, gc=False):
    """ec_token: every column, and what stands behind the token."""

    ec_token: str
    psn_no: str
    fixmedins_code: str
    business_type: str
    device_id: str
    issued_at: datetime
    expires_at: datetime
    uses: int
    max_uses: int
    pay_authorized_at: datetime | None
    # the phone that showed the code and, for a family member's code, the binding (LEFT JOINs: None when gone)
    device_status: str | None
    device_psn_no: str | None
    family_status: str | None
