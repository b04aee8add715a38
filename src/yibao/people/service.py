"""What an insured person may see about themselves and bound family members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.money import yuan
from yibao.credential import service as credential
from yibao.credential.models import Device, FamilyBinding
from yibao.encounter.models import Settlement
from yibao.ledger.models import LedgerEntry
from yibao.registry.models import Account, Contribution, Employer, Enrolment, Institution, Person

LABELS = {"310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助", "390": "城乡居民基本医疗保险",
          "392": "城乡居民大病医疗保险", "510": "生育保险"}
RELATIONS = {"02": "配偶", "03": "子女", "04": "父母"}


def mask(certno: str) -> str:
    return certno[:4] + "*" * (len(certno) - 8) + certno[-4:] if len(certno) > 8 else certno


def profile(session: Session, user_psn_no: str) -> dict[str, Any]:
    me = session.get(Person, user_psn_no)
    assert me is not None
    family = [{"id": b.id, "psn_no": p.psn_no, "name": p.psn_name, "relation": b.relation, "relation_name": RELATIONS.get(b.relation, ""),
               "status": b.status} for b, p in credential.family_members(session, user_psn_no)]
    requests = [{"id": b.id, "holder_name": p.psn_name, "relation": b.relation}
                for b, p in session.execute(select(FamilyBinding, Person).join(Person, Person.psn_no == FamilyBinding.holder_psn_no)
                                            .where(FamilyBinding.member_psn_no == user_psn_no, FamilyBinding.status == "pending")).tuples()]
    return {"psn_no": me.psn_no, "name": me.psn_name, "certno": mask(me.certno), "gend": me.gend, "brdy": clock.fmt_date(me.brdy),
            "family": family, "requests": requests}


def person_card(session: Session, psn_no: str) -> dict[str, Any]:
    person = session.get(Person, psn_no)
    assert person is not None
    account = session.get(Account, psn_no)
    enrolments = session.execute(select(Enrolment, Employer.emp_name).outerjoin(Employer, Employer.emp_no == Enrolment.emp_no)
                                 .where(Enrolment.psn_no == psn_no).order_by(Enrolment.insutype)).tuples().all()
    return {
        "psn_no": psn_no, "name": person.psn_name, "certno": mask(person.certno), "age": clock.age_on(person.brdy, clock.today()),
        "balance": yuan(account.balance_fen) if account else None,
        "enrolments": [{"insutype": e.insutype, "insutype_name": LABELS.get(e.insutype, e.insutype), "psn_type": e.psn_type,
                        "status": e.psn_insu_stas, "since": clock.fmt_date(e.psn_insu_date), "region": e.insuplc_admdvs,
                        "employer": emp or ""} for e, emp in enrolments],
    }


def contributions(session: Session, psn_no: str) -> list[dict[str, Any]]:
    rows = session.scalars(select(Contribution).where(Contribution.psn_no == psn_no).order_by(Contribution.cntr_ym.desc())).all()
    return [{"period": r.cntr_ym, "insutype": r.insutype, "base": yuan(r.cntr_base_fen), "employer": yuan(r.emp_pay_fen),
             "personal": yuan(r.psn_pay_fen), "to_account": yuan(r.acct_cred_fen), "paid_on": clock.fmt_date(r.paid_on)} for r in rows]


def settlements(session: Session, psn_no: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.execute(select(Settlement, Institution.fixmedins_name).join(Institution, Institution.fixmedins_code == Settlement.fixmedins_code)
                           .where(Settlement.psn_no == psn_no).order_by(Settlement.setl_time.desc()).limit(limit)).tuples()
    return [{"setl_id": s.setl_id, "mdtrt_id": s.mdtrt_id, "time": clock.fmt_datetime(s.setl_time), "institution": name, "med_type": s.med_type,
             "kind": s.kind, "total": yuan(s.medfee_sumamt), "funds": yuan(s.fund_pay_sumamt), "account": yuan(s.acct_pay + s.acct_mulaid_pay),
             "cash": yuan(s.psn_cash_pay), "reversal": s.refd_setl_flag == "1", "reversed": bool(s.revs_setl_id) and s.refd_setl_flag == "0"}
            for s, name in rows]


def account_movements(session: Session, psn_no: str, limit: int = 100) -> dict[str, Any]:
    account = session.get(Account, psn_no)
    if account is None:
        return {"balance": None, "movements": []}
    payments = session.execute(select(LedgerEntry.amount_fen, LedgerEntry.posted_at, LedgerEntry.psn_no, Settlement.fixmedins_code)
                               .join(Settlement, Settlement.setl_id == LedgerEntry.setl_id)
                               .where(LedgerEntry.account == f"acct:{psn_no}").order_by(LedgerEntry.posted_at.desc()).limit(limit)).all()
    credits = session.scalars(select(Contribution).where(Contribution.psn_no == psn_no, Contribution.acct_cred_fen > 0)
                              .order_by(Contribution.cntr_ym.desc()).limit(limit)).all()
    moves = [{"time": clock.fmt_datetime(t), "amount": yuan(-a), "what": "结算支付" if a > 0 else "结算撤销退回",
              "for_family": patient != psn_no, "institution": code} for a, t, patient, code in payments]
    moves += [{"time": f"{c.paid_on} 00:00:00", "amount": yuan(c.acct_cred_fen), "what": f"{c.cntr_ym} 划入", "for_family": False,
               "institution": ""} for c in credits]
    moves.sort(key=lambda m: m["time"], reverse=True)
    return {"balance": yuan(account.balance_fen), "opening": yuan(account.opening_fen), "movements": moves[:limit]}


def devices(session: Session, psn_no: str) -> list[dict[str, Any]]:
    return [{"device_id": d.device_id, "label": d.label, "channel": d.chnl_id, "status": d.status,
             "registered_at": clock.fmt_datetime(d.registered_at)}
            for d in session.scalars(select(Device).where(Device.psn_no == psn_no).order_by(Device.registered_at))]
