"""Typed rows of chronic-disease registrations and the disease catalogue (`yibao.store.sql`)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class RegistrationRow(msgspec.Struct, gc=False):
    """chronic_registration: every column."""

    trt_dcla_detl_sn: str
    psn_no: str
    insutype: str
    opsp_dise_code: str
    opsp_dise_name: str
    tel: str
    addr: str
    insu_optins: str
    ide_fixmedins_no: str
    ide_fixmedins_name: str
    hosp_ide_date: date
    diag_dr_codg: str
    diag_dr_name: str
    begndate: date
    enddate: date | None
    status: str
    fixmedins_code: str
    opter: str
    opter_name: str
    filed_at: datetime
    cancelled_at: datetime | None
    cancel_memo: str


class DiseaseRow(msgspec.Struct, gc=False):
    """disease_code: code, name, chapter."""

    code: str
    name: str
    chapter: str
