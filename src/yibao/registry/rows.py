"""Typed rows of the registry's tables, as the hot-path statements (`yibao.store.sql`) answer them.

Field names are the columns', in the order the statements select them."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class PersonRow(msgspec.Struct, gc=False):
    """person: every column."""

    psn_no: str
    psn_cert_type: str
    certno: str
    psn_name: str
    gend: str
    naty: str
    brdy: date
    ntly: str
    tel: str
    hshld_id: int | None
    hshld_rlts: str
    card_no: str | None
    card_sn: str | None


class EnrolmentRow(msgspec.Struct, gc=False):
    """enrolment: every column, and the employer's name."""

    id: int
    psn_no: str
    insutype: str
    psn_type: str
    psn_insu_stas: str
    psn_insu_date: date
    paus_insu_date: date | None
    insuplc_admdvs: str
    emp_no: str | None
    cvlserv_flag: str
    emp_name: str | None  # the employer's (LEFT JOIN employer)


class IdentityRow(msgspec.Struct, gc=False):
    """identity: every column."""

    id: int
    psn_no: str
    psn_idet_type: str
    psn_type_lv: str | None
    memo: str
    begntime: datetime
    endtime: datetime | None


class AccountRow(msgspec.Struct, gc=False):
    """account: every column."""

    psn_no: str
    insutype: str
    opening_fen: int
    opened_on: date
    balance_fen: int


class InstitutionRow(msgspec.Struct, gc=False):
    """institution: fixmedins_code, fixmedins_type, medins_lv."""

    fixmedins_code: str
    fixmedins_type: str
    medins_lv: int | None
