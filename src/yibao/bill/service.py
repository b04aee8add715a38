"""Issuing e-bills for settlements, red bills for reversals, and verifying them (docs/bills.md).

Issuance is off the settlement's hot path: a background issuer (yibao.bill.issuer) picks up new settlements a moment
after they commit, by an indexed cursor on ``settlement.setl_time``, and signs them in small batches; and a bill asked
for before the issuer got to it (a person opening their bills) is issued there and then. Both go through `issue`, which
serialises on the bill code's series row, so a settlement never gets two bills nor a number twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from yibao.bill import document as doc
from yibao.bill.models import Bill, BillCursor, BillKey, BillSeries
from yibao.config import Settings
from yibao.core import clock, crypto, sm2
from yibao.core.errors import InputError, NotFound
from yibao.core.money import yuan
from yibao.credential import service as credential
from yibao.encounter.models import FeeLine, Settlement
from yibao.registry.models import Institution, Person
from yibao.store import sql
from yibao.store.db import Database

log = structlog.get_logger("yibao.bill")

# settlements committed out of time order (PostgreSQL's concurrent writers, a federation call inside a settlement) are
# still found: each round looks this far behind the last settlement it issued for
LAG = timedelta(seconds=60)
BATCH = 20  # bills signed in one transaction (~1 ms each): on SQLite the round holds the writers' lock ~20 ms, a settlement's wait at most
CURSOR = "issuer"
STATES = {"valid": "有效", "cancelled": "已冲红", "absent": "不存在", "mismatch": "校验码不符", "tampered": "已篡改"}

_keys: dict[str, str] = {}  # key_id → private PEM, opened once per process
_keys_lock = threading.Lock()


# -- keys ------------------------------------------------------------------------------------------

def _signing_key(session: Session) -> tuple[str, str]:
    """(key_id, private PEM) of the newest active key; a first key is made at the first need."""
    row = session.execute(select(BillKey.key_id).where(BillKey.status == "active")
                          .order_by(BillKey.created_at.desc(), BillKey.key_id).limit(1)).scalar()
    if row is None:
        return rotate_key(session)
    with _keys_lock:
        if row not in _keys:
            key = session.get(BillKey, row)
            assert key is not None
            _keys[row] = key.private_pem
        return row, _keys[row]


def rotate_key(session: Session) -> tuple[str, str]:
    """A new signing key; the older ones are retired from signing but stay published and keep verifying what they signed."""
    private_pem, public_pem = sm2.generate_keypair()
    key_id = crypto.sm3_hex(public_pem.encode())[:16].upper()
    session.execute(update(BillKey).where(BillKey.status == "active").values(status="retired"))
    session.add(BillKey(key_id=key_id, private_pem=private_pem, public_pem=public_pem, created_at=clock.now(), status="active"))
    session.flush()
    with _keys_lock:
        _keys[key_id] = private_pem
    log.info("bill signing key created", key_id=key_id)
    return key_id, private_pem


def public_keys(db: Database) -> list[dict[str, str]]:
    with db.unit_of_work(write=False) as session:
        rows = session.scalars(select(BillKey).order_by(BillKey.created_at)).all()
        return [{"key_id": k.key_id, "algorithm": "SM2-SM3", "public_key": k.public_pem,
                 "created_at": clock.fmt_datetime(k.created_at) or "", "status": k.status} for k in rows]


def _public_key(session: Session, key_id: str) -> str | None:
    return session.execute(select(BillKey.public_pem).where(BillKey.key_id == key_id)).scalar()


# -- issuing ---------------------------------------------------------------------------------------

@dataclass
class _Setl:
    setl_id: str
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    insutype: str
    med_type: str
    kind: str
    setl_time: datetime
    refd_setl_flag: str
    revs_setl_id: str | None
    medfee_sumamt: int
    amounts: dict[str, int]


_SETL_COLUMNS = [Settlement.setl_id, Settlement.mdtrt_id, Settlement.psn_no, Settlement.fixmedins_code, Settlement.insutype,
                 Settlement.med_type, Settlement.kind, Settlement.setl_time, Settlement.refd_setl_flag, Settlement.revs_setl_id,
                 Settlement.medfee_sumamt] + [getattr(Settlement, name) for name in doc.FUNDS]
_SETL_FIELDS = ("setl_id", "mdtrt_id", "psn_no", "fixmedins_code", "insutype", "med_type", "kind", "setl_time", "refd_setl_flag",
                "revs_setl_id", "medfee_sumamt")


def _settlements(session: Session, setl_ids: Iterable[str]) -> dict[str, _Setl]:
    ids = list(dict.fromkeys(setl_ids))
    found: dict[str, _Setl] = {}
    for start in range(0, len(ids), 500):
        for r in session.execute(select(*_SETL_COLUMNS).where(Settlement.setl_id.in_(ids[start:start + 500]))):
            facts: dict[str, Any] = dict(zip(_SETL_FIELDS, r[:11], strict=True))
            found[r[0]] = _Setl(**facts, amounts={name: r[11 + i] for i, name in enumerate(doc.FUNDS)})
    return found


def _items(session: Session, setl_ids: list[str]) -> dict[str, list[tuple[str, int]]]:
    rows = session.execute(select(FeeLine.setl_id, FeeLine.med_chrgitm_type, func.sum(FeeLine.det_item_fee_sumamt_fen))
                           .where(FeeLine.setl_id.in_(setl_ids)).group_by(FeeLine.setl_id, FeeLine.med_chrgitm_type))
    items: dict[str, list[tuple[str, int]]] = {}
    for setl_id, category, total in rows:
        items.setdefault(str(setl_id), []).append((category, int(total)))
    return items


def _fen(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _lock_series(session: Session, code: str) -> int:
    """The code's last number, its row locked until the transaction ends (every issuer of this code waits here)."""
    insert = sql.dialect_insert(session.get_bind().dialect.name)
    session.execute(insert(BillSeries).values(bill_code=code, last_no=0).on_conflict_do_nothing(index_elements=["bill_code"]))
    return int(session.execute(select(BillSeries.last_no).where(BillSeries.bill_code == code).with_for_update()).scalar_one())


def issue(session: Session, settings: Settings, setl_ids: Iterable[str]) -> list[str]:
    """Bills for these settlements that have none yet (and for the originals of reversals among them, first); the
    setl_ids billed now."""
    rows = _settlements(session, setl_ids)
    originals = [r.revs_setl_id for r in rows.values() if r.refd_setl_flag == "1" and r.revs_setl_id and r.revs_setl_id not in rows]
    rows.update(_settlements(session, originals))
    ordered = sorted(rows.values(), key=lambda r: (r.refd_setl_flag, r.setl_time, r.setl_id))
    if not ordered:
        return []
    codes = {doc.bill_code(settings.platform_admdvs, r.kind, r.setl_time.year) for r in ordered}
    last = {code: _lock_series(session, code) for code in sorted(codes)}  # one order of locks: no deadlock between issuers
    billed = set(session.scalars(select(Bill.setl_id).where(Bill.setl_id.in_([r.setl_id for r in ordered]))))
    todo = [r for r in ordered if r.setl_id not in billed]
    if not todo:
        return []
    key_id, private_pem = _signing_key(session)
    items = _items(session, [r.setl_id for r in todo if r.refd_setl_flag == "0"])
    people = {p.psn_no: p for p in session.execute(select(Person.psn_no, Person.psn_name, Person.certno)
                                                   .where(Person.psn_no.in_({r.psn_no for r in todo})))}
    names = dict(session.execute(select(Institution.fixmedins_code, Institution.fixmedins_name)
                                 .where(Institution.fixmedins_code.in_({r.fixmedins_code for r in todo}))).tuples().all())
    # the blue bills of the reversals' originals: issued earlier, or in this call (kept in `blue` as they are made)
    blue: dict[str, tuple[str, str, list[dict[str, str]]]] = {
        b.setl_id: (b.bill_code, b.bill_no, json.loads(b.document)["items"])
        for b in session.execute(select(Bill.setl_id, Bill.bill_code, Bill.bill_no, Bill.document)
                                 .where(Bill.setl_id.in_([r.revs_setl_id for r in todo if r.refd_setl_flag == "1" and r.revs_setl_id])))}
    now = clock.now()
    made: list[dict[str, Any]] = []
    cancelled: list[tuple[str, str]] = []  # (blue bill's setl_id, red bill's setl_id)
    for r in todo:
        code = doc.bill_code(settings.platform_admdvs, r.kind, r.setl_time.year)
        last[code] += 1
        number = f"{last[code]:010d}"
        person = people.get(r.psn_no)
        red = r.refd_setl_flag == "1"
        content: dict[str, Any] = {
            "v": doc.VERSION, "bill_code": code, "bill_no": number, "kind": "red" if red else "blue",
            "title": doc.KINDS["red" if red else "blue"], "issued_at": clock.fmt_datetime(now) or "",
            "issuer": {"node": settings.platform_admdvs, "key_id": key_id},
            "institution": {"code": r.fixmedins_code, "name": names.get(r.fixmedins_code, "")},
            "payer": {"name": person.psn_name if person else "", "certno": doc.mask_certno(person.certno) if person else ""},
            "settlement": {"setl_id": r.setl_id, "mdtrt_id": r.mdtrt_id, "setl_time": clock.fmt_datetime(r.setl_time) or "",
                           "med_type": r.med_type, "insutype": r.insutype},
            "total": str(yuan(r.medfee_sumamt)),
            "funds": {name: str(yuan(r.amounts[name])) for name in doc.FUNDS},
        }
        related: str | None = None
        if red and r.revs_setl_id in blue:
            original_code, original_no, original_items = blue[r.revs_setl_id]
            content["original"] = {"bill_code": original_code, "bill_no": original_no, "setl_id": r.revs_setl_id}
            content["items"] = [{**i, "amount": str(yuan(-_fen(i["amount"])))} for i in original_items]
            related = r.revs_setl_id
            cancelled.append((r.revs_setl_id, r.setl_id))
        else:
            # a settlement reversed before the issuer reached it has no fee lines left (the reversal reopened them): one line
            content["items"] = [{"code": c, "name": doc.CHARGE_CATEGORIES.get(c, "其他费"), "amount": str(yuan(a))}
                                for c, a in sorted(items.get(r.setl_id, []))] or \
                [{"code": "", "name": "医疗费", "amount": str(yuan(r.medfee_sumamt))}]
        message = doc.canonical(content, checked=True)
        signature = sm2.sign(private_pem, message)
        if not red:
            blue[r.setl_id] = (code, number, content["items"])
        made.append({"setl_id": r.setl_id, "bill_code": code, "bill_no": number, "check_code": doc.check_code(signature),
                     "kind": content["kind"], "psn_no": r.psn_no, "fixmedins_code": r.fixmedins_code, "setl_time": r.setl_time,
                     "issued_at": now, "key_id": key_id, "document": message.decode("utf-8"), "signature": signature, "status": "valid",
                     "related_setl_id": related})
    session.execute(insert(Bill), made)
    for original_id, red_id in cancelled:
        session.execute(update(Bill).where(Bill.setl_id == original_id).values(status="cancelled", related_setl_id=red_id))
    for code, last_no in last.items():
        session.execute(update(BillSeries).where(BillSeries.bill_code == code).values(last_no=last_no))
    return [m["setl_id"] for m in made]


def issue_pending(db: Database, settings: Settings, batch: int = BATCH) -> int:
    """One round of the background issuer: bills for settlements from the cursor (less the lag) that have none."""
    with db.unit_of_work() as session:
        cursor = session.get(BillCursor, CURSOR)
        since = (cursor.setl_time - LAG) if cursor is not None else datetime(1900, 1, 1)
        pending = session.execute(select(Settlement.setl_id, Settlement.setl_time)
                                  .outerjoin(Bill, Bill.setl_id == Settlement.setl_id)
                                  .where(Settlement.setl_time >= since, Bill.setl_id.is_(None))
                                  .order_by(Settlement.setl_time, Settlement.setl_id).limit(batch)).all()
        if not pending:
            return 0
        done = issue(session, settings, [p[0] for p in pending])
        newest = max(p[1] for p in pending)
        if cursor is None:
            session.add(BillCursor(name=CURSOR, setl_time=newest))
        elif newest > cursor.setl_time:
            cursor.setl_time = newest
        return len(done)


def sweep(db: Database, settings: Settings, batch: int = BATCH) -> int:
    """Every settlement of the database without a bill, however old (the issuer looks back only a minute from its
    cursor): a walk through ``setl_time`` in rounds, each its own transaction. For `yibao bills issue --all`."""
    since, total = datetime(1900, 1, 1), 0
    while True:
        with db.unit_of_work() as session:
            pending = session.execute(select(Settlement.setl_id, Settlement.setl_time)
                                      .outerjoin(Bill, Bill.setl_id == Settlement.setl_id)
                                      .where(Settlement.setl_time >= since, Bill.setl_id.is_(None))
                                      .order_by(Settlement.setl_time, Settlement.setl_id).limit(batch)).all()
            if not pending:
                return total
            total += len(issue(session, settings, [p[0] for p in pending]))
            since = max(p[1] for p in pending)


def issue_all_pending(db: Database, settings: Settings) -> int:
    """Rounds until nothing is pending (each its own transaction)."""
    total = 0
    while True:
        done = issue_pending(db, settings)
        total += done
        if done == 0:
            return total


# -- what a person sees ----------------------------------------------------------------------------

def verify_url(settings: Settings, bill: Bill) -> str:
    query = urlencode({"code": bill.bill_code, "number": bill.bill_no, "check": bill.check_code})
    return f"{settings.public_base_url.rstrip('/')}/app/verify.html?{query}"


def _summary(settings: Settings, bill: Bill) -> dict[str, Any]:
    content = json.loads(bill.document)
    return {"setl_id": bill.setl_id, "bill_code": bill.bill_code, "bill_no": bill.bill_no, "check_code": bill.check_code,
            "kind": bill.kind, "kind_name": "红字票据" if bill.kind == "red" else "蓝字票据", "status": bill.status,
            "status_name": STATES[bill.status], "issued_at": clock.fmt_datetime(bill.issued_at),
            "setl_time": clock.fmt_datetime(bill.setl_time), "institution": content["institution"]["name"], "total": content["total"],
            "verify_url": verify_url(settings, bill)}


def _issue_for_person(session: Session, settings: Settings, psn_no: str) -> None:
    missing = session.scalars(select(Settlement.setl_id).outerjoin(Bill, Bill.setl_id == Settlement.setl_id)
                              .where(Settlement.psn_no == psn_no, Bill.setl_id.is_(None))).all()
    if missing:
        issue(session, settings, missing)


def person_bills(db: Database, settings: Settings, token: str, psn_no: str) -> list[dict[str, Any]]:
    """The bills of me or a bound family member, newest first (any settlement not billed yet is billed now)."""
    with db.unit_of_work() as session:
        user = credential.session_person(session, token)
        credential.require_access(session, user.psn_no, psn_no)
        _issue_for_person(session, settings, psn_no)
        bills = session.scalars(select(Bill).where(Bill.psn_no == psn_no).order_by(Bill.setl_time.desc(), Bill.bill_no.desc())
                                .limit(200)).all()
        return [_summary(settings, b) for b in bills]


def _own_bill(session: Session, settings: Settings, token: str, psn_no: str, setl_id: str) -> Bill:
    user = credential.session_person(session, token)
    credential.require_access(session, user.psn_no, psn_no)
    bill = session.get(Bill, setl_id)
    if bill is None:
        owner = session.execute(select(Settlement.psn_no).where(Settlement.setl_id == setl_id)).scalar()
        if owner == psn_no:
            issue(session, settings, [setl_id])
            bill = session.get(Bill, setl_id)
    if bill is None or bill.psn_no != psn_no:
        raise NotFound("没有这张票据", field="setl_id")
    return bill


def person_bill(db: Database, settings: Settings, token: str, psn_no: str, setl_id: str) -> dict[str, Any]:
    """One bill with its signed content and signature (what the app shows and anyone may verify)."""
    with db.unit_of_work() as session:
        bill = _own_bill(session, settings, token, psn_no, setl_id)
        return {**_summary(settings, bill), "document": json.loads(bill.document), "signature": bill.signature,
                "related_setl_id": bill.related_setl_id}


def person_bill_pdf(db: Database, settings: Settings, token: str, psn_no: str, setl_id: str) -> tuple[str, bytes]:
    """(file name, PDF) of one bill of me or a bound family member."""
    from yibao.bill import pdf

    with db.unit_of_work() as session:
        bill = _own_bill(session, settings, token, psn_no, setl_id)
        content, status, url = json.loads(bill.document), bill.status, verify_url(settings, bill)
        name = f"{bill.bill_code}-{bill.bill_no}.pdf"
    return name, pdf.render(content, check=doc.check_code(bill.signature), status=STATES[status], verify_url=url)


# -- verification (public) -------------------------------------------------------------------------

def _facts(bill: Bill, content: dict[str, Any], related: Bill | None) -> dict[str, Any]:
    facts = {"bill_code": bill.bill_code, "bill_no": bill.bill_no, "kind": bill.kind,
             "title": content.get("title", ""), "issued_at": content.get("issued_at", ""),
             "institution": content.get("institution", {}).get("name", ""),
             "payer": doc.mask_name(content.get("payer", {}).get("name", "")), "total": content.get("total", ""),
             "funds": content.get("funds", {}), "items": content.get("items", []), "key_id": bill.key_id}
    if related is not None:
        facts["related"] = {"bill_code": related.bill_code, "bill_no": related.bill_no, "kind": related.kind}
    return facts


def _standing(session: Session, bill: Bill) -> str:
    """A bill's status; a blue bill whose settlement was reversed is cancelled at once, before its red bill is issued."""
    if bill.kind == "blue" and bill.status == "valid":
        reversed_by = session.execute(select(Settlement.revs_setl_id).where(Settlement.setl_id == bill.setl_id)).scalar()
        if reversed_by:
            return "cancelled"
    return bill.status


def _answer(status: str, **facts: Any) -> dict[str, Any]:
    return {"status": status, "result": STATES[status], **facts}


def verify_number(db: Database, code: str, number: str, check: str) -> dict[str, Any]:
    """By bill code, number and check code (what is printed on the bill and in its QR code)."""
    code, number, check = code.strip(), number.strip(), check.strip().upper()
    if not (code.isdigit() and len(code) == 8):
        raise InputError("票据代码为8位数字", field="code")
    if not (number.isdigit() and 0 < len(number) <= 10):
        raise InputError("票据号码为10位以内数字", field="number")
    if not check or len(check) > 6:
        raise InputError("校验码为6位", field="check")
    with db.unit_of_work(write=False) as session:
        bill = session.scalars(select(Bill).where(Bill.bill_code == code, Bill.bill_no == number.zfill(10))).first()
        if bill is None:
            return _answer("absent")
        if not crypto.equal(bill.check_code, check):
            return _answer("mismatch")
        content = json.loads(bill.document)
        public_pem = _public_key(session, bill.key_id)
        if public_pem is None or not doc.verify(public_pem, content, bill.signature):
            return _answer("tampered")  # the stored copy itself was changed: say so, never vouch for it
        related = session.get(Bill, bill.related_setl_id) if bill.related_setl_id else None
        return _answer(_standing(session, bill), **_facts(bill, content, related))


def verify_content(db: Database, content: Any, signature: str) -> dict[str, Any]:
    """A bill's content and signature as someone holds them: valid (and its standing here) or tampered."""
    if not isinstance(content, dict) or not isinstance(content.get("issuer"), dict):
        raise InputError("不是票据内容", field="document")
    key_id = str(content["issuer"].get("key_id", ""))
    with db.unit_of_work(write=False) as session:
        public_pem = _public_key(session, key_id)
        if public_pem is None or not doc.verify(public_pem, content, signature):
            return _answer("tampered", check_code="")
        bill = session.scalars(select(Bill).where(Bill.bill_code == str(content.get("bill_code", "")),
                                                  Bill.bill_no == str(content.get("bill_no", ""))).limit(1)).first()
        if bill is None:
            return _answer("absent", check_code=doc.check_code(signature))
        related = session.get(Bill, bill.related_setl_id) if bill.related_setl_id else None
        return _answer(_standing(session, bill), check_code=doc.check_code(signature), **_facts(bill, content, related))

