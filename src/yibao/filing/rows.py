"""Typed row of the filing settlement reads on its hot path (`yibao.store.sql`)."""

from __future__ import annotations

from datetime import date

import msgspec


class FilingRow(msgspec.Struct, gc=False):
    """care_away_filing: what settlement and 2001 need."""

    trt_dcla_detl_sn: str
    psn_no: str
    filing_type: str
    target_admdvs: str
    begndate: date
    enddate: date | None
