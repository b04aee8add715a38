"""Typed rows of the year-to-date totals and the ledger (`yibao.store.sql`); totals are changed and written back."""

from __future__ import annotations

import msgspec


class YearTotalRow(msgspec.Struct, gc=False):
    """year_total: every column."""

    psn_no: str
    year: int
    otp_dedc: int
    hifp_otp: int
    hifp: int
    hifob: int
    cvlserv: int
    hifmi: int
    maf: int
    inscp_self: int
    admissions: int
    settlements: int


class ChronicYearTotalRow(msgspec.Struct, gc=False):
    """chronic_year_total: every column."""

    psn_no: str
    year: int
    opsp_dise_code: str
    dedc: int
    hifp: int
    settlements: int


class EntryRow(msgspec.Struct, gc=False):
    """ledger_entry: account, amount_fen."""

    account: str
    amount_fen: int
