"""Maternity allowances: scheduled from maternity settlements without an application, paid on their day.

`run` is what the bureau's scheduler calls (`yibao maternity run`, daily): it schedules an allowance for every standing
maternity settlement (med_type 52) that has none, cancels the unpaid ones whose settlement was reversed, and pays the
ones due through the bank's disbursement service. Each step is its own short transaction; the bank is called between
them, never inside one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import InputError, NotFound
from yibao.encounter.models import Settlement, Visit
from yibao.maternity import entitlement
from yibao.maternity.models import BenefitAccount, MaternityAllowance
from yibao.maternity.payout import Outcome, Unavailable
from yibao.policy.parameters import PolicyError
from yibao.policy.service import category_of, policy_for
from yibao.registry.models import Contribution, Enrolment, Person
from yibao.store.db import Database

MATERNITY_STAY = "52"   # 生育住院
EMPLOYEES = "310"       # maternity insurance is merged into the employees' basic insurance
STATUS_NAMES = {"scheduled": "待发放", "paid": "已发放", "refused": "不予计发", "cancelled": "已取消"}


class Payout(Protocol):
    def pay(self, *, ref: str, payee_name: str, bank_name: str, account_no: str, amount_fen: int, memo: str) -> Outcome: ...


def _month_before(ym: tuple[int, int], months: int) -> str:
    year, month = ym
    index = year * 12 + (month - 1) - months
    return f"{index // 12:04d}{index % 12 + 1:02d}"


def payout_day(settled: date, day: int) -> date:
    """``day`` of the month after ``settled`` (the allowance is paid on the region's payout day)."""
    year, month = (settled.year + 1, 1) if settled.month == 12 else (settled.year, settled.month + 1)
    return date(year, month, min(day, 28))


def contribution_months(session: Session, psn_no: str, birth: date) -> int:
    """Months with an employees' contribution among the twelve before the birth's month."""
    last, first = _month_before((birth.year, birth.month), 1), _month_before((birth.year, birth.month), 12)
    return int(session.scalar(select(func.count(func.distinct(Contribution.cntr_ym)))
                              .where(Contribution.psn_no == psn_no, Contribution.insutype == EMPLOYEES,
                                     Contribution.cntr_ym >= first, Contribution.cntr_ym <= last)) or 0)


def monthly_wage(session: Session, psn_no: str, emp_no: str, birth: date) -> tuple[int, str]:
    """The employer's average monthly wage of the year before the birth (what its employees contributed on), and how
    it was found; without the employer's figures, the person's own average of the twelve months before."""
    year = str(birth.year - 1)
    if emp_no:
        average = session.scalar(
            select(func.avg(Contribution.cntr_base_fen))
            .join(Enrolment, and_(Enrolment.psn_no == Contribution.psn_no, Enrolment.insutype == EMPLOYEES))
            .where(Enrolment.emp_no == emp_no, Contribution.insutype == EMPLOYEES, Contribution.cntr_ym >= f"{year}01",
                   Contribution.cntr_ym <= f"{year}12", Contribution.cntr_base_fen > 0))
        if average:
            return int(round(average)), f"用人单位{year}年度职工月平均缴费工资"
    last, first = _month_before((birth.year, birth.month), 1), _month_before((birth.year, birth.month), 12)
    own = session.scalar(select(func.avg(Contribution.cntr_base_fen))
                         .where(Contribution.psn_no == psn_no, Contribution.insutype == EMPLOYEES, Contribution.cntr_ym >= first,
                                Contribution.cntr_ym <= last, Contribution.cntr_base_fen > 0))
    return (int(round(own)), "本人生育前12个月平均缴费工资（用人单位上年度数据缺失）") if own else (0, "无缴费工资记录")


def _unscheduled(session: Session) -> list[Any]:
    return list(session.execute(
        select(Settlement.setl_id, Settlement.psn_no, Settlement.mdtrt_id, Settlement.setl_time, Settlement.psn_type,
               Visit.matn_type, Visit.geso_val, Visit.fetus_cnt, Visit.birctrl_matn_date, Visit.endtime, Visit.begntime,
               Visit.insuplc_admdvs, Person.gend)
        .join(Visit, Visit.mdtrt_id == Settlement.mdtrt_id).join(Person, Person.psn_no == Settlement.psn_no)
        .outerjoin(MaternityAllowance, MaternityAllowance.setl_id == Settlement.setl_id)
        .where(Settlement.med_type == MATERNITY_STAY, Settlement.insutype == EMPLOYEES, Settlement.refd_setl_flag == "0",
               Settlement.revs_setl_id.is_(None), Settlement.mid_setl_flag == "0", MaternityAllowance.id.is_(None))
        .order_by(Settlement.setl_time).limit(1000)))


def assess(session: Session, row: Any, now: datetime) -> MaternityAllowance:
    """The allowance one maternity settlement gives (or why none), not yet added to the session."""
    birth = row.birctrl_matn_date or (row.endtime or row.begntime).date()
    emp_no = session.scalar(select(Enrolment.emp_no).where(Enrolment.psn_no == row.psn_no, Enrolment.insutype == EMPLOYEES)
                            .order_by(Enrolment.psn_insu_date.desc()).limit(1)) or ""
    allowance = MaternityAllowance(setl_id=row.setl_id, psn_no=row.psn_no, mdtrt_id=row.mdtrt_id, admdvs=row.insuplc_admdvs,
                                   emp_no=emp_no, matn_type=row.matn_type or "", geso_val=row.geso_val or 0,
                                   fetus_cnt=row.fetus_cnt or 0, birth_date=birth, created_at=now, status="refused", attempts=0)
    try:
        policy = policy_for(row.insuplc_admdvs, EMPLOYEES, category_of(EMPLOYEES, row.psn_type), birth)
    except PolicyError as error:
        allowance.reason = f"参保地政策无法计发：{error.message}"[:300]
        return allowance
    if row.gend != "2":
        allowance.reason = "生育津贴由生育的女职工享受"
        return allowance
    days = entitlement.entitled_days(policy, allowance.matn_type, allowance.geso_val, allowance.fetus_cnt)
    allowance.steps = "；".join(days.steps)[:500]
    if days.refused:
        allowance.reason = days.refused
        return allowance
    needed, months = int(policy.get("maternity.min_contribution_months.all")), contribution_months(session, row.psn_no, birth)
    if months < needed:
        allowance.reason = f"生育前12个月缴费{months}个月，不足{needed}个月：生育津贴由用人单位按原工资标准支付"
        return allowance
    wage, basis = monthly_wage(session, row.psn_no, emp_no, birth)
    if wage <= 0:
        allowance.reason = "无缴费工资记录，无法计发"
        return allowance
    allowance.days, allowance.monthly_wage_fen, allowance.wage_basis = days.days, wage, basis
    allowance.amount_fen = entitlement.allowance_fen(wage, days.days)
    allowance.status = "scheduled"
    allowance.due_on = payout_day(row.setl_time.date(), int(policy.get("maternity.payout_day.all")))
    return allowance


def schedule(db: Database) -> list[MaternityAllowance]:
    """An allowance (or a recorded refusal) for every standing maternity settlement that has none."""
    made: list[MaternityAllowance] = []
    with db.unit_of_work() as session:
        now = clock.now()
        for row in _unscheduled(session):
            allowance = assess(session, row, now)
            session.add(allowance)
            made.append(allowance)
    return made


def cancel_reversed(db: Database) -> int:
    """Unpaid allowances whose settlement was reversed are cancelled (a paid one stays paid: recovering it is manual)."""
    with db.unit_of_work() as session:
        found = list(session.scalars(
            select(MaternityAllowance).join(Settlement, Settlement.setl_id == MaternityAllowance.setl_id)
            .where(MaternityAllowance.status == "scheduled", Settlement.revs_setl_id.is_not(None))))
        for allowance in found:
            allowance.status, allowance.reason = "cancelled", "生育住院结算已撤销"
        return len(found)


@dataclass
class RunReport:
    scheduled: int = 0
    refused: int = 0
    cancelled: int = 0
    paid: int = 0
    paid_fen: int = 0
    waiting: int = 0      # due, not paid this run (no account yet, the bank unavailable or refusing)

    def line(self) -> str:
        return (f"scheduled {self.scheduled}, refused {self.refused}, cancelled {self.cancelled}, paid {self.paid} "
                f"({self.paid_fen // 100}.{self.paid_fen % 100:02d} yuan), waiting {self.waiting}")


def pay_due(db: Database, payout: Payout, on: date, report: RunReport) -> None:
    with db.unit_of_work(write=False) as session:
        due = [a.id for a in session.scalars(select(MaternityAllowance).where(MaternityAllowance.status == "scheduled",
                                                                             MaternityAllowance.due_on <= on)
                                             .order_by(MaternityAllowance.due_on, MaternityAllowance.id))]
    for allowance_id in due:
        with db.unit_of_work(write=False) as session:
            allowance = session.get(MaternityAllowance, allowance_id)
            account = session.get(BenefitAccount, allowance.psn_no) if allowance else None
            person = session.get(Person, allowance.psn_no) if allowance else None
            if allowance is None or allowance.status != "scheduled" or person is None:
                continue
            ref, amount, tail = f"MA{allowance.id:012d}", allowance.amount_fen, account.account_tail if account else ""
            order = (dict(payee_name=person.psn_name, bank_name=account.bank_name, account_no=account.account_no)
                     if account else None)
        outcome: Outcome | None = None
        error = ""
        if order is None:
            error = "未登记待遇发放账户：请在医保码“生育津贴”页登记本人银行账户"
        else:
            try:
                outcome = payout.pay(ref=ref, amount_fen=amount, memo="生育津贴", **order)
            except Unavailable as failure:
                error = failure.message
        with db.unit_of_work() as session:
            allowance = session.get(MaternityAllowance, allowance_id)
            if allowance is None or allowance.status != "scheduled":
                continue
            allowance.attempts += 1
            if outcome is not None and outcome.paid:
                allowance.status, allowance.paid_at, allowance.bank_ref = "paid", clock.now(), outcome.bank_ref
                allowance.account_tail, allowance.last_error = tail, ""
                report.paid += 1
                report.paid_fen += allowance.amount_fen
            else:
                allowance.last_error = (error or f"银行未付款：{outcome.reason if outcome else ''}")[:300]
                report.waiting += 1


def run(db: Database, payout: Payout | None, on: date) -> RunReport:
    """Schedule, cancel, pay what is due on ``on`` (without a payout channel: schedule and cancel only)."""
    report = RunReport()
    for allowance in schedule(db):
        if allowance.status == "scheduled":
            report.scheduled += 1
        else:
            report.refused += 1
    report.cancelled = cancel_reversed(db)
    if payout is not None:
        pay_due(db, payout, on, report)
    return report


# -- what the person sees ------------------------------------------------------------------------------

def shown(allowance: MaternityAllowance) -> dict[str, Any]:
    return {"id": allowance.id, "setl_id": allowance.setl_id, "birth_date": allowance.birth_date.isoformat(),
            "matn_type": allowance.matn_type, "days": allowance.days, "steps": allowance.steps,
            "monthly_wage": f"{allowance.monthly_wage_fen / 100:.2f}", "wage_basis": allowance.wage_basis,
            "amount": f"{allowance.amount_fen / 100:.2f}", "status": allowance.status,
            "status_name": STATUS_NAMES.get(allowance.status, allowance.status), "reason": allowance.reason,
            "due_on": allowance.due_on.isoformat() if allowance.due_on else "",
            "paid_at": clock.fmt_datetime(allowance.paid_at) if allowance.paid_at else "",
            "account_tail": allowance.account_tail, "waiting_because": allowance.last_error if allowance.status == "scheduled" else ""}


def allowances_of(session: Session, psn_no: str) -> list[dict[str, Any]]:
    return [shown(a) for a in session.scalars(select(MaternityAllowance).where(MaternityAllowance.psn_no == psn_no)
                                              .order_by(MaternityAllowance.birth_date.desc(), MaternityAllowance.id.desc()))]


def account_of(session: Session, psn_no: str) -> dict[str, str]:
    return _account_shown(session.get(BenefitAccount, psn_no))


def _account_shown(account: BenefitAccount | None) -> dict[str, str]:
    if account is None:
        return {"bank_name": "", "account_tail": "", "updated_at": ""}
    return {"bank_name": account.bank_name, "account_tail": account.account_tail,
            "updated_at": clock.fmt_datetime(account.updated_at) or ""}


def set_account(session: Session, psn_no: str, bank_name: str, account_no: str) -> dict[str, str]:
    bank_name, account_no = bank_name.strip(), account_no.replace(" ", "").strip()
    if not 2 <= len(bank_name) <= 50:
        raise InputError("请填写开户银行名称", field="bank_name")
    if not (12 <= len(account_no) <= 30 and account_no.isdigit()):
        raise InputError("银行账号应为12至30位数字", field="account_no")
    if session.get(Person, psn_no) is None:
        raise NotFound("参保人不存在", field="psn_no")
    account = session.get(BenefitAccount, psn_no)
    if account is None:
        account = BenefitAccount(psn_no=psn_no)
        session.add(account)
    account.bank_name, account.account_no, account.account_tail, account.updated_at = bank_name, account_no, account_no[-4:], clock.now()
    return _account_shown(account)
