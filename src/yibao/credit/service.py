"""Credit care (信用就医): a person's credit agreement with a partner bank, the bank's advance of a settlement's cash part
at discharge (no deposit at admission), the repayment schedule, automatic repayment (the personal account where the
policy allows, else the person's card through the bank), overdue handling and statements.

- An agreement: the person applies in the app choosing a partner bank; the bank grants a limit or refuses. States:
  ``applied`` (asked, no answer yet) → ``active`` (limit, available) ⇄ ``suspended`` (an instalment is overdue: no new
  advances until it is paid) → ``closed``; ``refused`` when the bank declined. One standing agreement per person.
- An advance (`advance_settlement`): given a posted settlement, the bank pays its ``psn_cash_pay`` to the institution,
  up to the available limit (what is over it stays cash, and the answer says so). The limit's available part falls by
  the advance and rises again as it is repaid. A reversal of the settlement before any repayment cancels the advance
  (`cancel_for_reversal`, run inside the reversal's transaction); once repayment has begun the reversal is refused.
- The schedule: the region's ``credit.yaml`` in force on the advance's day: ``grace_days`` interest-free, then
  ``instalments`` every ``period_days`` (fewer when they would fall below ``min_instalment``).
- Repayment (`run_due`, `yibao credit run --date`): each instalment due on or before the day is paid from the personal
  account first where the policy allows it, the person agreed, and the year's ``account_repay_cap`` is not reached
  (posted to the ledger under the repayment's number: ``acct:<psn_no>`` out, ``bank:<bank_code>`` in, the account
  locked, never overdrawn); the rest is collected by the bank from the person's card. A collection the bank declines
  leaves the instalment ``overdue`` and suspends the agreement; the next run (or the person's 立即还款 in the app)
  tries again, and when nothing is overdue the agreement is active again.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.config import Settings
from yibao.core import clock
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.core.money import yuan
from yibao.credential import service as credential
from yibao.credit import bank as bank_http
from yibao.credit.models import CreditAdvance, CreditAgreement, CreditBank, CreditInstalment, CreditRepayment
from yibao.deployment import service as deployment
from yibao.encounter.models import Settlement
from yibao.ledger import service as ledger
from yibao.policy.service import CreditTerms, region_credit_terms
from yibao.registry import service as registry
from yibao.store.db import Database

T = TypeVar("T")

STANDING = ("applied", "active", "suspended")
STATES = {"applied": "审核中", "active": "正常", "suspended": "已暂停（有逾期）", "closed": "已关闭", "refused": "未通过"}
INSTALMENT_STATES = {"due": "待还", "paid": "已还", "overdue": "逾期", "cancelled": "已取消"}
ADVANCE_STATES = {"open": "还款中", "repaid": "已还清", "cancelled": "已撤销"}
SOURCES = {"acct": "个人账户", "bank": "银行卡"}


class Bank(Protocol):
    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]: ...


def _y(fen: int) -> str:
    """Fen as the yuan string the app, the bank and the statements read (``1234.50``)."""
    return str(yuan(fen))


def _serial(prefix: str) -> str:
    """30 characters: a two-letter kind, the time (14) and 14 random digits."""
    return f"{prefix}{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**14):014d}"


def _money(value: Any, what: str) -> int:
    """A bank's amount (yuan as a string or number) in fen; anything else is the bank's fault."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise bank_http.BankUnavailable(f"{what}: {str(value)[:20]} is not an amount") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise bank_http.BankUnavailable(f"{what}: {str(value)[:20]} is not an amount")
    return int(amount * 100)


# -- partner banks --------------------------------------------------------------------------------------------------

def add_bank(session: Session, *, bank_code: str, bank_name: str, url: str, key: str) -> CreditBank:
    """Register a partner bank (or change its name, endpoint or key)."""
    code = bank_code.strip()
    if not code or len(code) > 20:
        raise InputError("a bank code of 1 to 20 characters is required", field="bank_code")
    if not url.startswith(("https://", "http://")):  # the demo's bank (demo:) is seeded by the demo only
        raise InputError("the bank's URL must be http(s)://…", field="url")
    if len(key) < 16:
        raise InputError("the bank's key must have at least 16 characters", field="key")
    row = session.get(CreditBank, code)
    if row is None:
        row = CreditBank(bank_code=code, bank_name=bank_name.strip()[:100], url=url[:500], key=key, active=1, added_at=clock.now())
        session.add(row)
    else:
        row.bank_name, row.url, row.key, row.active = bank_name.strip()[:100] or row.bank_name, url[:500], key, 1
    return row


def banks(session: Session) -> list[CreditBank]:
    return list(session.scalars(select(CreditBank).where(CreditBank.active == 1).order_by(CreditBank.bank_code)))


def bank_client(session: Session, bank_code: str) -> Bank:
    """The registered bank's client; the demo bank (``url`` ``demo:``) answers only in a demo database."""
    row = session.get(CreditBank, bank_code) if bank_code.isprintable() else None
    if row is None:
        raise NotFound("没有该合作银行", field="bank_code")
    if row.url == bank_http.DEMO_URL:
        if deployment.mode(session) != deployment.DEMO:
            raise bank_http.BankUnavailable("the demo bank answers only in a demo database")
        return bank_http.DemoBank()
    return bank_http.client(row.url, row.key)


def add_demo_bank(session: Session) -> None:
    """The demo's partner bank (`yibao.demo`): in-process, so the app's 信用就医 works in `make run`."""
    if session.get(CreditBank, "DEMOBANK") is None:
        session.add(CreditBank(bank_code="DEMOBANK", bank_name="演示合作银行", url=bank_http.DEMO_URL, key=secrets.token_hex(16), active=1,
                               added_at=clock.now()))


# Which client speaks to a bank: the registered endpoint (tests may put another in its place).
BankOf = Callable[[Session, str], Bank]


# -- agreements -----------------------------------------------------------------------------------------------------

def standing_agreement(session: Session, psn_no: str, *, lock: bool = False) -> CreditAgreement | None:
    stmt = select(CreditAgreement).where(CreditAgreement.psn_no == psn_no, CreditAgreement.status.in_(STANDING))
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt.order_by(CreditAgreement.applied_at.desc())).first()


def agreements_of(session: Session, psn_no: str) -> list[CreditAgreement]:
    return list(session.scalars(select(CreditAgreement).where(CreditAgreement.psn_no == psn_no)
                                .order_by(CreditAgreement.applied_at.desc())))


def apply(session: Session, psn_no: str, bank_code: str, *, auto_account: bool) -> CreditAgreement:
    """Record the person's application (``applied``); `decide` asks the bank. An application still waiting for the bank
    is asked again (the same agreement number)."""
    registry.person(session, psn_no, "")
    code = bank_code.strip()
    # a code with control characters names no bank (PostgreSQL would not even take a NUL as a parameter)
    row = session.get(CreditBank, code) if code.isprintable() else None
    if row is None or not row.active:
        raise NotFound("没有该合作银行", field="bank_code")
    standing = standing_agreement(session, psn_no, lock=True)
    if standing is not None:
        if standing.status == "applied" and standing.bank_code == row.bank_code:
            standing.auto_account = 1 if auto_account else 0
            return standing
        raise Conflict(f"已有{STATES[standing.status]}的信用就医协议（{standing.agreement_no}），请先关闭", field="bank_code")
    agreement = CreditAgreement(agreement_no=_serial("XY"), psn_no=psn_no, bank_code=row.bank_code, status="applied", limit_fen=0,
                                available_fen=0, auto_account=1 if auto_account else 0, bank_ref="", reason="", applied_at=clock.now(),
                                decided_at=None, suspended_at=None, closed_at=None)
    session.add(agreement)
    return agreement


def decide(session: Session, bank: Bank, agreement_no: str) -> CreditAgreement:
    """Ask the bank about an ``applied`` agreement: ``active`` with the limit it grants, or ``refused`` with its reason.
    The bank unavailable: it stays ``applied`` (BankUnavailable is raised; the person asks again later)."""
    agreement = session.get(CreditAgreement, agreement_no, with_for_update=True)
    if agreement is None:
        raise NotFound(f"没有信用就医协议{agreement_no[:30]}")
    if agreement.status != "applied":
        return agreement
    person = registry.person(session, agreement.psn_no, "")
    answer = bank.call("apply", {"agreement_no": agreement.agreement_no, "certno": person.certno, "name": person.psn_name})
    agreement.decided_at = clock.now()
    if answer.get("granted") is True:
        limit = _money(answer.get("limit"), "apply.limit")
        if limit <= 0:
            raise bank_http.BankUnavailable("apply: granted a limit of 0")
        agreement.status, agreement.limit_fen, agreement.available_fen = "active", limit, limit
        agreement.bank_ref = str(answer.get("bank_ref", ""))[:64] or agreement.agreement_no
    else:
        agreement.status, agreement.reason = "refused", str(answer.get("reason", ""))[:200] or "银行未批准"
    return agreement


def close(session: Session, bank: Bank, psn_no: str) -> CreditAgreement:
    """Close the person's agreement: only with nothing owed."""
    agreement = standing_agreement(session, psn_no, lock=True)
    if agreement is None:
        raise NotFound("没有可关闭的信用就医协议")
    owed = _owed(session, agreement.agreement_no)
    if owed:
        raise Conflict(f"尚有{_y(owed)}元未还，还清后才能关闭协议")
    if agreement.bank_ref:
        bank.call("close", {"bank_ref": agreement.bank_ref})
    agreement.status, agreement.closed_at = "closed", clock.now()
    return agreement


def _owed(session: Session, agreement_no: str) -> int:
    owed = session.scalar(select(func.sum(CreditInstalment.amount_fen - CreditInstalment.paid_fen))
                          .join(CreditAdvance, CreditAdvance.advance_no == CreditInstalment.advance_no)
                          .where(CreditAdvance.agreement_no == agreement_no, CreditInstalment.status.in_(("due", "overdue"))))
    return int(owed or 0)


@dataclass(frozen=True)
class Standing:
    """What the hospital sees at admission: whether the person may be admitted without a deposit."""

    psn_no: str
    agreement: CreditAgreement | None
    bank_name: str

    @property
    def deposit_free(self) -> bool:
        return self.agreement is not None and self.agreement.status == "active" and self.agreement.available_fen > 0


def standing(session: Session, psn_no: str, where: str = "input.data") -> Standing:
    registry.person(session, psn_no, where)
    agreement = standing_agreement(session, psn_no)
    bank = session.get(CreditBank, agreement.bank_code) if agreement else None
    return Standing(psn_no, agreement, bank.bank_name if bank else "")


# -- advances -------------------------------------------------------------------------------------------------------

def schedule(amount: int, start: date, terms: CreditTerms) -> list[tuple[int, date, int]]:
    """(seq, due date, fen): the interest-free days, then equal instalments (the first takes the odd fen), none below the
    policy's minimum unless the whole amount is."""
    count = max(1, min(terms.instalments, amount // terms.min_instalment if terms.min_instalment else terms.instalments))
    part, odd = divmod(amount, count)
    first = start + timedelta(days=terms.grace_days)
    return [(i + 1, first + timedelta(days=i * terms.period_days), part + (odd if i == 0 else 0)) for i in range(count)]


@dataclass(frozen=True)
class Advanced:
    advance: CreditAdvance
    agreement: CreditAgreement
    instalments: list[CreditInstalment]
    # what stays the patient's to pay in cash (over the available limit)
    cash_left_fen: int
    # True when this settlement had been advanced already (a retry)
    again: bool = False


# how long after its settlement a counter's 2802 may advance the cash part (docs/credit-care.md): later, the cash part is
# taken to have been collected at the counter already
ADVANCE_WINDOW_MINUTES = 30

# checks of whether a settlement's cash part was already paid another way (mobile payment registers one: it sits above
# credit and imports it, not the other way round); each answers True when paid
COLLECTED_ELSEWHERE: list[Callable[[Session, str], bool]] = []


def advance_settlement(session: Session, bank_of: BankOf, setl_id: str, *, fixmedins_code: str = "", psn_no: str = "",
                       mdtrt_id: str = "", where: str = "input.data", confirmed_in_app: bool = False) -> Advanced:
    """The bank pays a posted settlement's cash part (``psn_cash_pay``) to the institution, up to the available limit;
    the person owes it to the bank on the policy's schedule. For the hospital (``fixmedins_code``: only its own
    settlements) and the app's discharge (``psn_no``: only the person's own). The same settlement again answers the
    advance already made in the app (``confirmed_in_app``: the person chose credit care for that very bill); from a
    counter (the caller checked the person's credential) it is refused, as is a cash part already paid by mobile payment
    or settled more than `ADVANCE_WINDOW_MINUTES` ago (collected at the counter by then)."""
    settlement = session.get(Settlement, setl_id.strip())
    if settlement is None or (fixmedins_code and settlement.fixmedins_code != fixmedins_code) or (psn_no and settlement.psn_no != psn_no):
        raise NotFound(f"没有结算{setl_id[:30]}", field=f"{where}.setl_id")
    if mdtrt_id and settlement.mdtrt_id != mdtrt_id:
        raise InputError(f"结算{settlement.setl_id}属于就诊{settlement.mdtrt_id}", field=f"{where}.mdtrt_id")
    if settlement.refd_setl_flag != "0" or settlement.revs_setl_id:
        raise Conflict(f"结算{settlement.setl_id}已冲销，不能信用就医垫付", field=f"{where}.setl_id")
    # the agreement locked before anything is read of this settlement's advance: a second 2802 for it (a retry sent
    # while the first is still running) waits here, then answers the first one's advance
    agreement = standing_agreement(session, settlement.psn_no, lock=True)
    done = session.scalars(select(CreditAdvance).where(CreditAdvance.setl_id == settlement.setl_id)).first()
    if done is not None and done.status != "cancelled" and not confirmed_in_app:
        raise Conflict(f"结算{settlement.setl_id}已由信用就医垫付（{done.advance_no}），不能再次垫付", field=f"{where}.setl_id")
    if done is not None and done.status != "cancelled":
        agreement = session.get(CreditAgreement, done.agreement_no)
        assert agreement is not None
        return Advanced(done, agreement, instalments_of(session, done.advance_no), int(settlement.psn_cash_pay) - done.amount_fen,
                        again=True)
    if done is not None:  # cancelled with its settlement's reversal
        raise Conflict(f"结算{settlement.setl_id}的信用就医垫付已撤销", field=f"{where}.setl_id")
    cash = int(settlement.psn_cash_pay)
    if cash <= 0:
        raise InputError(f"结算{settlement.setl_id}个人现金支付为0，无需垫付", field=f"{where}.setl_id")
    if not confirmed_in_app:
        if any(paid(session, settlement.setl_id) for paid in COLLECTED_ELSEWHERE):
            raise Conflict(f"结算{settlement.setl_id}的个人现金部分已通过移动支付缴纳，不能再由银行垫付", field=f"{where}.setl_id")
        if clock.now() > settlement.setl_time + timedelta(minutes=ADVANCE_WINDOW_MINUTES):
            raise Conflict(f"结算{settlement.setl_id}已超过{ADVANCE_WINDOW_MINUTES}分钟，个人现金部分视为已缴纳，不能再由银行垫付",
                           field=f"{where}.setl_id")
    if agreement is None:
        raise InputError("该人员未开通信用就医（在医保码“信用就医”中签约合作银行）", field=f"{where}.psn_no")
    if agreement.status == "applied":
        raise Conflict("该人员的信用就医申请银行尚未审核通过", field=f"{where}.psn_no")
    if agreement.status == "suspended":
        raise Conflict("该人员信用就医有逾期未还款项，已暂停使用，还清后恢复", field=f"{where}.psn_no")
    if agreement.available_fen <= 0:
        raise Conflict(f"信用额度已用完（额度{_y(agreement.limit_fen)}元），请以现金支付", field=f"{where}.psn_no")
    amount = min(cash, agreement.available_fen)
    terms = region_credit_terms(settlement.clr_optins, clock.today())
    now = clock.now()
    advance = CreditAdvance(advance_no=_serial("DF"), agreement_no=agreement.agreement_no, psn_no=settlement.psn_no,
                            bank_code=agreement.bank_code, setl_id=settlement.setl_id, mdtrt_id=settlement.mdtrt_id,
                            fixmedins_code=settlement.fixmedins_code, insuplc_admdvs=settlement.clr_optins, insutype=settlement.insutype,
                            cash_fen=cash, amount_fen=amount, bank_ref="", status="open", advanced_at=now, cancelled_at=None)
    bank = bank_of(session, agreement.bank_code)
    answer = bank.call("advance", {"bank_ref": agreement.bank_ref, "advance_no": advance.advance_no, "amount": _y(amount),
                                   "fixmedins_code": settlement.fixmedins_code, "setl_id": settlement.setl_id})
    if answer.get("accepted") is not True:
        raise Conflict(f"合作银行未同意垫付：{str(answer.get('reason', ''))[:100] or '请以现金支付'}", field=f"{where}.setl_id")
    advance.bank_ref = str(answer.get("ref", ""))[:64]
    session.add(advance)
    instalments = [CreditInstalment(advance_no=advance.advance_no, seq=seq, psn_no=advance.psn_no, due_date=due, amount_fen=part,
                                    paid_fen=0, status="due", overdue_since=None, paid_at=None)
                   for seq, due, part in schedule(amount, now.date(), terms)]
    session.add_all(instalments)
    agreement.available_fen -= amount
    return Advanced(advance, agreement, instalments, cash - amount)


def instalments_of(session: Session, advance_no: str) -> list[CreditInstalment]:
    return list(session.scalars(select(CreditInstalment).where(CreditInstalment.advance_no == advance_no).order_by(CreditInstalment.seq)))


def cancel_for_reversal(session: Session, original: Any) -> None:
    """Inside a settlement's reversal (2305/2208): its advance, if any, is cancelled (the bank takes back what it paid the
    institution, the limit is available again); once repayment has begun the reversal is refused."""
    found = session.scalars(select(CreditAdvance).where(CreditAdvance.setl_id == original.setl_id)).first()
    if found is None or found.status == "cancelled":
        return
    # the agreement first (the order every credit write takes), then the advance as it stands now
    agreement = session.get(CreditAgreement, found.agreement_no, with_for_update=True, populate_existing=True)
    assert agreement is not None
    advance = session.get(CreditAdvance, found.advance_no, with_for_update=True, populate_existing=True)
    assert advance is not None
    if advance.status == "cancelled":
        return
    repaid = session.scalar(select(func.count()).select_from(CreditRepayment).where(CreditRepayment.advance_no == advance.advance_no))
    if repaid:
        raise Conflict(f"结算{original.setl_id}已由合作银行信用就医垫付并开始还款（{advance.advance_no}），不能冲销；请联系医保经办机构",
                       field="input.data.setl_id")
    answer = bank_client(session, advance.bank_code).call("cancel", {"bank_ref": agreement.bank_ref, "advance_no": advance.advance_no})
    if answer.get("cancelled") is not True:
        raise Conflict(f"合作银行未同意撤销垫付{advance.advance_no}：{str(answer.get('reason', ''))[:80]}", field="input.data.setl_id")
    advance.status, advance.cancelled_at = "cancelled", clock.now()
    for instalment in instalments_of(session, advance.advance_no):
        instalment.status = "cancelled"
    agreement.available_fen += advance.amount_fen


# -- repayment ------------------------------------------------------------------------------------------------------

@dataclass
class RunReport:
    on: date
    instalments: int = 0
    from_account_fen: int = 0
    from_bank_fen: int = 0
    overdue: int = 0
    restored: int = 0
    unavailable: int = 0
    problems: list[str] = field(default_factory=list)


def due_instalments(session: Session, on: date, psn_no: str = "") -> list[tuple[str, int]]:
    """(advance_no, seq) of every unpaid instalment due on or before the day, oldest first."""
    stmt = (select(CreditInstalment.advance_no, CreditInstalment.seq)
            .where(CreditInstalment.status.in_(("due", "overdue")), CreditInstalment.due_date <= on))
    if psn_no:
        stmt = stmt.where(CreditInstalment.psn_no == psn_no)
    return [(a, s) for a, s in session.execute(stmt.order_by(CreditInstalment.due_date, CreditInstalment.advance_no,
                                                             CreditInstalment.seq))]


def _account_used(session: Session, psn_no: str, year: int) -> int:
    used = session.scalar(select(func.sum(CreditRepayment.amount_fen)).where(
        CreditRepayment.psn_no == psn_no, CreditRepayment.source == "acct",
        CreditRepayment.on_date >= date(year, 1, 1), CreditRepayment.on_date <= date(year, 12, 31)))
    return int(used or 0)


@dataclass
class Repaid:
    """What one instalment's turn did: ``paid``, ``overdue`` (the bank declined: the agreement is suspended) or ``skipped``."""

    status: str
    from_account_fen: int = 0
    from_bank_fen: int = 0
    restored: bool = False


def repay_instalment(session: Session, bank_of: BankOf, advance_no: str, seq: int, on: date) -> Repaid:
    """Pay one instalment on the day: the account first where allowed, then the bank collects the rest from the card.

    Locks: the agreement first (as an advance and a reversal do), then the instalment, then the personal account (as a
    settlement does), so a repayment, a reversal and a settlement of the person never deadlock."""
    advance = session.get(CreditAdvance, advance_no)
    if advance is None:
        return Repaid("skipped")
    agreement = session.get(CreditAgreement, advance.agreement_no, with_for_update=True, populate_existing=True)
    assert agreement is not None
    instalment = session.get(CreditInstalment, (advance_no, seq), with_for_update=True, populate_existing=True)
    if instalment is None or instalment.status not in ("due", "overdue") or instalment.due_date > on:
        return Repaid("skipped")
    done = Repaid("paid")
    owed = instalment.amount_fen - instalment.paid_fen
    terms = region_credit_terms(advance.insuplc_admdvs, on)
    if terms.account_may_repay and agreement.auto_account:
        room = terms.account_repay_cap - _account_used(session, advance.psn_no, on.year)
        # locked: the balance read here is the one the payment moves (a settlement of the person waits, or we wait for it)
        account = ledger.accounts(session, [advance.psn_no], lock=True).get(advance.psn_no)
        take = min(owed, room, account.balance_fen if account else 0)
        if account is not None and take > 0:
            repayment_no = _serial("HK")
            ledger.move_balance(session, account, -take)
            posting = ledger.Posting(repayment_no, advance.psn_no)
            posting.add(f"acct:{advance.psn_no}", take)
            posting.add(f"bank:{advance.bank_code}", -take)
            posting.write(session)
            _record(session, instalment, advance, agreement, repayment_no, take, "acct", on)
            owed -= take
            done.from_account_fen = take
    if owed > 0:
        repayment_no = _serial("HK")
        answer = bank_of(session, advance.bank_code).call("collect", {"bank_ref": agreement.bank_ref, "repayment_no": repayment_no,
                                                                      "amount": _y(owed)})
        if answer.get("paid") is True:
            _record(session, instalment, advance, agreement, repayment_no, owed, "bank", on)
            done.from_bank_fen = owed
            owed = 0
    if owed > 0:
        if instalment.status != "overdue":
            instalment.status, instalment.overdue_since = "overdue", on
        if agreement.status == "active":
            agreement.status, agreement.suspended_at = "suspended", clock.now()
        done.status = "overdue"
        return done
    instalment.status, instalment.paid_at = "paid", clock.now()
    session.flush()
    if not session.scalar(select(func.count()).select_from(CreditInstalment).where(
            CreditInstalment.advance_no == advance.advance_no, CreditInstalment.status.in_(("due", "overdue")))):
        advance.status = "repaid"
    if agreement.status == "suspended" and not _has_overdue(session, agreement.agreement_no):
        agreement.status, agreement.suspended_at = "active", None
        done.restored = True
    return done


def run_due(db: Database, on: date, *, bank_of: BankOf | None = None, psn_no: str = "") -> RunReport:
    """The repayment job (`yibao credit run --date`): every instalment due on or before ``on`` (of one person when
    ``psn_no``), each in its own transaction; a bank that does not answer leaves its instalment for the next run."""
    bank_of = bank_of or bank_client
    report = RunReport(on)
    with db.unit_of_work(write=False) as session:
        todo = due_instalments(session, on, psn_no)
    for advance_no, seq in todo:
        try:
            with db.unit_of_work() as session:
                done = repay_instalment(session, bank_of, advance_no, seq, on)
        except bank_http.BankUnavailable as error:
            report.unavailable += 1
            report.problems.append(f"{advance_no}/{seq}: {error.cause}")
            continue
        if done.status == "skipped":
            continue
        report.instalments += 1
        report.from_account_fen += done.from_account_fen
        report.from_bank_fen += done.from_bank_fen
        report.overdue += done.status == "overdue"
        report.restored += done.restored
    return report


def _has_overdue(session: Session, agreement_no: str) -> bool:
    return bool(session.scalar(select(func.count()).select_from(CreditInstalment)
                               .join(CreditAdvance, CreditAdvance.advance_no == CreditInstalment.advance_no)
                               .where(CreditAdvance.agreement_no == agreement_no, CreditInstalment.status == "overdue")))


def _record(session: Session, instalment: CreditInstalment, advance: CreditAdvance, agreement: CreditAgreement, repayment_no: str,
            amount: int, source: str, on: date) -> None:
    session.add(CreditRepayment(repayment_no=repayment_no, advance_no=advance.advance_no, seq=instalment.seq, psn_no=advance.psn_no,
                                bank_code=advance.bank_code, amount_fen=amount, source=source, on_date=on, paid_at=clock.now()))
    instalment.paid_fen += amount
    agreement.available_fen = min(agreement.limit_fen, agreement.available_fen + amount)


# -- statements -----------------------------------------------------------------------------------------------------

def person_statement(session: Session, psn_no: str, today: date | None = None) -> dict[str, Any]:
    """What the app shows: the agreement, every advance with its schedule and repayments, and the totals."""
    today = today or clock.today()
    agreement = standing_agreement(session, psn_no) or next(iter(agreements_of(session, psn_no)), None)
    names = {b.bank_code: b.bank_name for b in session.scalars(select(CreditBank))}
    advances = list(session.scalars(select(CreditAdvance).where(CreditAdvance.psn_no == psn_no).order_by(CreditAdvance.advanced_at.desc())))
    paid_by: dict[tuple[str, int], list[CreditRepayment]] = defaultdict(list)
    for r in session.scalars(select(CreditRepayment).where(CreditRepayment.psn_no == psn_no).order_by(CreditRepayment.paid_at)):
        paid_by[(r.advance_no, r.seq)].append(r)
    advanced = repaid = overdue = 0
    shown = []
    for a in advances:
        rows = instalments_of(session, a.advance_no)
        if a.status != "cancelled":
            advanced += a.amount_fen
        schedule_rows = []
        for i in rows:
            repayments = paid_by.get((a.advance_no, i.seq), [])
            repaid += sum(r.amount_fen for r in repayments)
            if i.status == "overdue":
                overdue += i.amount_fen - i.paid_fen
            schedule_rows.append({"seq": i.seq, "due_date": clock.fmt_date(i.due_date), "amount": _y(i.amount_fen), "paid": _y(i.paid_fen),
                                  "status": i.status, "state": INSTALMENT_STATES[i.status],
                                  "overdue_since": clock.fmt_date(i.overdue_since),
                                  "repayments": [{"amount": _y(r.amount_fen), "source": r.source, "source_name": SOURCES[r.source],
                                                  "on_date": clock.fmt_date(r.on_date)} for r in repayments]})
        shown.append({"advance_no": a.advance_no, "setl_id": a.setl_id, "fixmedins_code": a.fixmedins_code,
                      "advanced_at": clock.fmt_datetime(a.advanced_at), "cash": _y(a.cash_fen), "amount": _y(a.amount_fen),
                      "status": a.status, "state": ADVANCE_STATES[a.status], "schedule": schedule_rows})
    terms = None
    if agreement is not None:
        try:
            enrolments = registry.enrolments_of(session, psn_no)
            region = max(enrolments, key=lambda e: e.psn_insu_date).insuplc_admdvs if enrolments else ""
            terms = region_credit_terms(region, today) if region else None
        except InputError:
            terms = None
    return {
        "agreement": None if agreement is None else {
            "agreement_no": agreement.agreement_no, "bank_code": agreement.bank_code, "bank_name": names.get(agreement.bank_code, ""),
            "status": agreement.status, "state": STATES[agreement.status], "limit": _y(agreement.limit_fen),
            "available": _y(agreement.available_fen), "auto_account": bool(agreement.auto_account), "reason": agreement.reason,
            "applied_at": clock.fmt_datetime(agreement.applied_at)},
        "terms": None if terms is None else {"grace_days": terms.grace_days, "instalments": terms.instalments,
                                             "period_days": terms.period_days, "account_may_repay": terms.account_may_repay,
                                             "account_repay_cap": _y(terms.account_repay_cap)},
        "advances": shown,
        "totals": {"advanced": _y(advanced), "repaid": _y(repaid), "outstanding": _y(advanced - repaid), "overdue": _y(overdue)},
    }


def _month(text: str) -> tuple[date, date]:
    try:
        first = datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise InputError(f"'{text[:10]}' is not a month (yyyy-mm)", field="month") from None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def bank_statement(session: Session, bank_code: str, month: str) -> dict[str, Any]:
    """One bank's month: the advances made and cancelled in it, the repayments (by source), and at its end what is
    outstanding and what of it is overdue (due by then and not repaid by then); with a line per advance."""
    if session.get(CreditBank, bank_code) is None:
        raise NotFound(f"no partner bank {bank_code[:20]}", field="bank_code")
    first, last = _month(month)
    start, end = datetime.combine(first, datetime.min.time()), datetime.combine(last + timedelta(days=1), datetime.min.time())
    advances = list(session.scalars(select(CreditAdvance).where(CreditAdvance.bank_code == bank_code, CreditAdvance.advanced_at < end)
                                    .order_by(CreditAdvance.advanced_at, CreditAdvance.advance_no)))
    repayments = list(session.scalars(select(CreditRepayment).where(CreditRepayment.bank_code == bank_code,
                                                                    CreditRepayment.on_date <= last)))
    repaid_by: dict[tuple[str, int], int] = defaultdict(int)
    for r in repayments:
        repaid_by[(r.advance_no, r.seq)] += r.amount_fen
    # every instalment of those advances in one read (not one per advance)
    schedules: dict[str, list[tuple[int, date, int]]] = defaultdict(list)
    for advance_no, seq, due_date, amount in session.execute(
            select(CreditInstalment.advance_no, CreditInstalment.seq, CreditInstalment.due_date, CreditInstalment.amount_fen)
            .join(CreditAdvance, CreditAdvance.advance_no == CreditInstalment.advance_no)
            .where(CreditAdvance.bank_code == bank_code, CreditAdvance.advanced_at < end)).tuples():
        schedules[advance_no].append((seq, due_date, amount))
    made = cancelled = outstanding = overdue = 0
    lines = []
    for a in advances:
        standing_at_end = a.cancelled_at is None or a.cancelled_at >= end
        if start <= a.advanced_at < end:
            made += a.amount_fen
        if a.cancelled_at is not None and start <= a.cancelled_at < end:
            cancelled += a.amount_fen
        if not standing_at_end:
            continue
        owed_here = overdue_here = 0
        for seq, due_date, amount in schedules[a.advance_no]:
            left = amount - repaid_by.get((a.advance_no, seq), 0)
            owed_here += left
            if due_date <= last and left > 0:
                overdue_here += left
        outstanding += owed_here
        overdue += overdue_here
        lines.append({"advance_no": a.advance_no, "psn_no": a.psn_no, "setl_id": a.setl_id, "fixmedins_code": a.fixmedins_code,
                      "advanced_at": clock.fmt_datetime(a.advanced_at), "amount": _y(a.amount_fen),
                      "repaid": _y(a.amount_fen - owed_here), "outstanding": _y(owed_here), "overdue": _y(overdue_here)})
    in_month = [r for r in repayments if r.on_date >= first]
    return {"bank_code": bank_code, "month": first.strftime("%Y-%m"), "advanced": _y(made), "cancelled": _y(cancelled),
            "repaid": _y(sum(r.amount_fen for r in in_month)),
            "repaid_from_account": _y(sum(r.amount_fen for r in in_month if r.source == "acct")),
            "repaid_from_card": _y(sum(r.amount_fen for r in in_month if r.source == "bank")),
            "outstanding": _y(outstanding), "overdue": _y(overdue), "advances": lines}


# -- the people's app (each call owns its transactions; the views call these) -------------------------------------

def _signed_in(session: Session, token: str, psn_no: str, *, own: bool = False) -> str:
    """The signed-in person's psn_no; they may see a bound family member's credit, but sign, repay and close only their own."""
    user = credential.session_person(session, token)
    if own and user.psn_no != psn_no:
        raise credential.Refused("family", "信用就医协议只能由本人签约和办理", "psn_no")
    credential.require_access(session, user.psn_no, psn_no)
    return user.psn_no


def app_overview(db: Database, token: str, psn_no: str) -> dict[str, Any]:
    """The app's page: the partner banks, the person's agreement, advances with their schedules, and the totals."""
    with db.unit_of_work(write=False) as session:
        _signed_in(session, token, psn_no)
        return {**person_statement(session, psn_no),
                "banks": [{"bank_code": b.bank_code, "bank_name": b.bank_name} for b in banks(session)]}


def _with_password(db: Database, kind: str, psn_no: str, ip: str, work: Callable[[Session], T]) -> T:
    """`work` (which confirms the consumption password) in one write transaction; a wrong password is counted toward the
    lockout in a transaction of its own (the attempt's rolls back), audited, and the refusal says what the count now is —
    the people service's `_attempt` pattern (people sits above credit)."""
    try:
        with db.unit_of_work() as session:
            return work(session)
    except credential.WrongPassword as wrong:
        with db.unit_of_work() as session:
            refusal = credential.count_wrong_password(session, wrong.psn_no)
            audit.record(session, kind, actor=wrong.psn_no, subject=psn_no[:30], outcome="refused",
                         reason=str(getattr(refusal, "reason", type(refusal).__name__)), ip=ip)
        raise refusal from None


def app_apply(db: Database, settings: Settings, token: str, ip: str, psn_no: str, bank_code: str, auto_account: bool, password: str, *,
              bank_of: BankOf | None = None) -> dict[str, Any]:
    """Sign up, confirmed with the consumption password: the application is recorded, then the bank is asked (a bank
    that does not answer leaves it 审核中 and the person may submit again)."""
    def record(session: Session) -> tuple[str, str]:
        actor = _signed_in(session, token, psn_no, own=True)
        credential.confirm_with_password(session, settings, actor, password)
        agreement = apply(session, psn_no, bank_code, auto_account=auto_account)
        audit.record(session, "credit.apply", actor=actor, subject=psn_no,
                     reason=f"agreement {agreement.agreement_no} with {agreement.bank_code}", ip=ip)
        return actor, agreement.agreement_no

    actor, agreement_no = _with_password(db, "credit.apply", psn_no, ip, record)
    with db.unit_of_work() as session:
        decided = decide(session, (bank_of or bank_client)(session, bank_code.strip()), agreement_no)
        audit.record(session, f"credit.{decided.status}", actor=actor, subject=psn_no,
                     reason=f"agreement {agreement_no}: limit {decided.limit_fen} fen {decided.reason}"[:200], ip=ip)
    return app_overview(db, token, psn_no)


def app_repay(db: Database, token: str, psn_no: str, *, bank_of: BankOf | None = None) -> dict[str, Any]:
    """立即还款: every instalment of the person due by today (the overdue ones first), as the job would."""
    with db.unit_of_work(write=False) as session:
        _signed_in(session, token, psn_no, own=True)
        if not due_instalments(session, clock.today(), psn_no):
            raise Conflict("暂无到期应还的款项")
    report = run_due(db, clock.today(), bank_of=bank_of, psn_no=psn_no)
    if report.unavailable:
        raise bank_http.BankUnavailable("; ".join(report.problems)[:200])
    overview = app_overview(db, token, psn_no)
    return {**overview, "repaid": _y(report.from_account_fen + report.from_bank_fen), "still_overdue": report.overdue}


def app_close(db: Database, settings: Settings, token: str, ip: str, psn_no: str, password: str, *,
              bank_of: BankOf | None = None) -> dict[str, Any]:
    """Close the agreement, confirmed with the consumption password."""
    def work(session: Session) -> None:
        actor = _signed_in(session, token, psn_no, own=True)
        credential.confirm_with_password(session, settings, actor, password)
        agreement = standing_agreement(session, psn_no)
        if agreement is None:
            raise NotFound("没有可关闭的信用就医协议")
        closed = close(session, (bank_of or bank_client)(session, agreement.bank_code), psn_no)
        audit.record(session, "credit.close", actor=actor, subject=psn_no, reason=f"agreement {closed.agreement_no}", ip=ip)

    _with_password(db, "credit.close", psn_no, ip, work)
    return app_overview(db, token, psn_no)
