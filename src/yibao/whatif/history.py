"""Reading a year's standing settlements and the facts their claims were built from, a batch of people at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yibao.encounter.models import Settlement, Visit
from yibao.encounter.service import care_away, care_day_of
from yibao.registry.models import Enrolment, Identity, Institution
from yibao.whatif.replay import Recorded, SettlementFacts

_COLUMNS = (Settlement.setl_id, Settlement.psn_no, Settlement.mdtrt_id, Settlement.setl_time, Settlement.kind, Settlement.med_type,
            Settlement.insutype, Settlement.psn_type, Settlement.cvlserv_flag, Settlement.fixmedins_code, Settlement.mdtrtarea_admvs,
            Settlement.opsp_dise_code, Settlement.mid_setl_flag, Settlement.balc, Settlement.medfee_sumamt,
            Settlement.fulamt_ownpay_amt, Settlement.overlmt_selfpay, Settlement.preselfpay_amt, Settlement.inscp_scp_amt,
            Settlement.fund_pay_sumamt, Settlement.hifp_pay, Settlement.cvlserv_pay, Settlement.hifob_pay, Settlement.hifmi_pay,
            Settlement.maf_pay, Settlement.psn_part_amt, Settlement.acct_pay, Settlement.acct_mulaid_pay, Settlement.psn_cash_pay,
            Visit.begntime, Visit.insuplc_admdvs)


def _standing(year: int) -> tuple[Any, ...]:
    """Settlements of the year (by day of care) that stand — not reversed, not a reversal — and that this node's funds
    paid (on a federation another province's node pays for its own insured: its what-if is its own)."""
    return (Settlement.year == year, Settlement.refd_setl_flag == "0", Settlement.revs_setl_id.is_(None), Settlement.paid_by == "")


def count(session: Session, year: int) -> int:
    return int(session.execute(select(func.count()).select_from(Settlement).where(*_standing(year))).scalar_one())


def people_batches(session: Session, year: int, batch: int = 2000) -> Iterator[list[list[SettlementFacts]]]:
    """Each person's standing settlements of the year in the order they were made, ``batch`` people at a time."""
    levels = {code: level or 1 for code, level in session.execute(select(Institution.fixmedins_code, Institution.medins_lv))}
    stmt = (select(*_COLUMNS).join(Visit, Visit.mdtrt_id == Settlement.mdtrt_id).where(*_standing(year))
            .order_by(Settlement.psn_no, Settlement.setl_time, Settlement.setl_id))
    rows: list[Sequence[object]] = []
    people = 0
    last = None
    for row in session.execute(stmt, execution_options={"yield_per": 5000, "stream_results": True}):
        if row.psn_no != last:
            if people == batch:
                yield _facts(session, rows, levels)
                rows, people = [], 0
            people += 1
            last = row.psn_no
        rows.append(row)
    if rows:
        yield _facts(session, rows, levels)


def _facts(session: Session, rows: list[Any], levels: dict[str, int]) -> list[list[SettlementFacts]]:
    psn_nos = sorted({row.psn_no for row in rows})
    enrolments: dict[str, list[Any]] = defaultdict(list)
    for e in session.execute(select(Enrolment.psn_no, Enrolment.insutype, Enrolment.psn_insu_stas).where(Enrolment.psn_no.in_(psn_nos))):
        enrolments[e.psn_no].append(e)
    identities: dict[str, list[tuple[str, datetime, datetime | None]]] = defaultdict(list)
    for i in session.execute(select(Identity.psn_no, Identity.psn_idet_type, Identity.begntime, Identity.endtime)
                             .where(Identity.psn_no.in_(psn_nos))):
        identities[i.psn_no].append((i.psn_idet_type, i.begntime, i.endtime))
    people: list[list[SettlementFacts]] = []
    for row in rows:
        if not people or people[-1][0].psn_no != row.psn_no:
            people.append([])
        day = care_day_of(row)
        enrolled = frozenset(e.insutype for e in enrolments[row.psn_no] if e.psn_insu_stas == "1")
        # as the settlement read them: identities in force at its moment (registry.identities_on)
        moment = row.setl_time
        held = tuple(kind for kind, begun, ended in identities[row.psn_no] if begun <= moment and (ended is None or ended >= moment))
        unfiled, referral = care_away(session, row.psn_no, row.mdtrtarea_admvs, row.insuplc_admdvs, day)
        people[-1].append(SettlementFacts(
            setl_id=row.setl_id, psn_no=row.psn_no, mdtrt_id=row.mdtrt_id, setl_time=row.setl_time, care_day=day, kind=row.kind,
            med_type=row.med_type, insutype=row.insutype, psn_type=row.psn_type, insuplc_admdvs=row.insuplc_admdvs,
            fixmedins_code=row.fixmedins_code, hosp_lv=levels.get(row.fixmedins_code, 1), cvlserv=row.cvlserv_flag == "1",
            enrolled=enrolled, identities=held, unfiled=unfiled, referral=referral, opsp_dise_code=row.opsp_dise_code,
            mid_setl=row.mid_setl_flag == "1", acct_balance=row.balc + row.acct_pay, mulaid_balance=row.acct_mulaid_pay,
            acct_used=row.acct_pay + row.acct_mulaid_pay > 0, medfee_sumamt=row.medfee_sumamt, fulamt_ownpay_amt=row.fulamt_ownpay_amt,
            overlmt_selfpay=row.overlmt_selfpay, preselfpay_amt=row.preselfpay_amt, inscp_scp_amt=row.inscp_scp_amt,
            recorded=Recorded(row.fund_pay_sumamt, row.hifp_pay, row.cvlserv_pay, row.hifob_pay, row.hifmi_pay, row.maf_pay,
                              row.psn_part_amt, row.acct_pay, row.psn_cash_pay)))
    return people
