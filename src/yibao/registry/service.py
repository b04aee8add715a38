"""Finding insured people by credential and describing them the way 1101 answers.

Every counter transaction reads a person, their enrolments and identities, so these reads are
hot-path statements (`yibao.store.sql`) answering plain records with the models' column names.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import DateTime, bindparam, or_, select
from sqlalchemy.orm import Session

from yibao.core import clock, idcard
from yibao.core.errors import InputError, NotFound
from yibao.core.money import yuan
from yibao.registry.models import Account, Employer, Enrolment, Identity, Operator, Person
from yibao.registry.rows import AccountRow, EnrolmentRow, IdentityRow, PersonRow
from yibao.store import sql

ID_CARD = "01"  # psn_cert_type: resident identity card


class TokenCheck(Protocol):
    """The e-credential's check of a presented ecToken (yibao.credential.service.use_token): the registry sits below the
    e-credential, so its callers pass it in."""

    def __call__(self, session: Session, ec_token: str, fixmedins_code: str, field: str) -> Any: ...


_PERSON, _ENROLMENT, _IDENTITY, _ACCOUNT = Person.__table__, Enrolment.__table__, Identity.__table__, Account.__table__
PERSON = sql.Query(PersonRow, sql.select_of(PersonRow, _PERSON).where(_PERSON.c.psn_no == bindparam("psn_no")))
PERSON_BY_CERT = sql.Query(PersonRow, sql.select_of(PersonRow, _PERSON).where(_PERSON.c.psn_cert_type == bindparam("psn_cert_type"),
                                                                               _PERSON.c.certno == bindparam("certno")))
PERSON_BY_CARD = sql.Query(PersonRow, sql.select_of(PersonRow, _PERSON).where(_PERSON.c.card_no == bindparam("card_no")))
_EMPLOYER = Employer.__table__
ENROLMENTS = sql.Query(EnrolmentRow, select(*sql.columns(EnrolmentRow, _ENROLMENT, _EMPLOYER))
                       .select_from(_ENROLMENT.outerjoin(_EMPLOYER, _EMPLOYER.c.emp_no == _ENROLMENT.c.emp_no))
                       .where(_ENROLMENT.c.psn_no == bindparam("psn_no")).order_by(_ENROLMENT.c.insutype, _ENROLMENT.c.psn_insu_date))
_MOMENT = bindparam("moment", type_=DateTime())
IDENTITIES = sql.Query(IdentityRow, sql.select_of(IdentityRow, _IDENTITY)
                       .where(_IDENTITY.c.psn_no == bindparam("psn_no"), _IDENTITY.c.begntime <= _MOMENT,
                              or_(_IDENTITY.c.endtime.is_(None), _IDENTITY.c.endtime >= _MOMENT))
                       .order_by(_IDENTITY.c.begntime))
ACCOUNT = sql.Query(AccountRow, sql.select_of(AccountRow, _ACCOUNT).where(_ACCOUNT.c.psn_no == bindparam("psn_no")))


def find_by_id_number(session: Session, certno: str, psn_cert_type: str = ID_CARD, field: str = "certno") -> PersonRow:
    if psn_cert_type == ID_CARD:
        idcard.validate(certno, field)
    person = sql.first(session, PERSON_BY_CERT, psn_cert_type=psn_cert_type, certno=certno.strip().upper())
    if person is None:
        raise NotFound("no insured person holds this certificate number", field=field)
    return person


def find_by_card(session: Session, card_no: str, card_sn: str, field: str = "mdtrt_cert_no") -> PersonRow:
    person = sql.first(session, PERSON_BY_CARD, card_no=card_no.strip())
    if person is None:
        raise NotFound("no social-security card with this number", field=field)
    if not card_sn or person.card_sn != card_sn.strip():
        # The card identification code proves the physical card; a number alone is not enough.
        raise InputError("card_sn does not match the card", field=field.rsplit(".", 1)[0] + ".card_sn")
    return person


def age_in_years(birth: date, on: date) -> Decimal:
    """Age as the interface writes it: years with one decimal (4,1), truncated."""
    tenths = ((on - birth).days * 10 * 10000) // 3652425
    return (Decimal(tenths) / 10).quantize(Decimal("0.1"))


def person_answer(session: Session, person: Any, as_of: datetime | None = None) -> dict[str, Any]:
    """``baseinfo``, ``insuinfo[]`` and ``idetinfo[]`` of 1101."""
    moment = as_of or clock.now()
    enrolments = [e for e in enrolments_of(session, person.psn_no) if e.psn_insu_date <= moment.date()]
    account = sql.first(session, ACCOUNT, psn_no=person.psn_no)
    identities = sql.rows(session, IDENTITIES, psn_no=person.psn_no, moment=moment)
    return {
        "baseinfo": {
            "psn_no": person.psn_no,
            "psn_cert_type": person.psn_cert_type,
            "certno": person.certno,
            "psn_name": person.psn_name,
            "gend": person.gend,
            "naty": person.naty,
            "brdy": clock.fmt_date(person.brdy),
            "age": age_in_years(person.brdy, moment.date()),
        },
        "insuinfo": [
            {
                "balc": yuan(account.balance_fen if account is not None and account.insutype == e.insutype else 0),
                "insutype": e.insutype,
                "psn_type": e.psn_type,
                "psn_insu_stas": e.psn_insu_stas,
                "psn_insu_date": clock.fmt_date(e.psn_insu_date),
                "paus_insu_date": clock.fmt_date(e.paus_insu_date),
                "cvlserv_flag": e.cvlserv_flag,
                "insuplc_admdvs": e.insuplc_admdvs,
                "emp_name": e.emp_name or "",
            }
            for e in enrolments
        ],
        "idetinfo": [
            {
                "psn_idet_type": i.psn_idet_type,
                "psn_type_lv": i.psn_type_lv or "",
                "memo": i.memo,
                "begntime": clock.fmt_datetime(i.begntime),
                "endtime": clock.fmt_datetime(i.endtime),
            }
            for i in identities
        ],
    }


# session.info key: (psn_no, cert_type, cert_no) the person's home node proved in this call (yibao.federation.care)
PROVEN_BY_HOME = "yibao.proven_by_home"


def verify_credential(session: Session, person: Any, cert_type: str, cert_no: str, card_sn: str, where: str,
                      fixmedins_code: str, use_token: TokenCheck) -> Any:
    """The credential a counter presents must prove the person it names (psn_no): a psn_no alone proves nothing.

    01 a live ecToken of that person (spends one use); 02 that person's resident ID number; 03 that person's
    social-security card: its number and its identification code (card_sn), both as issued. Returns the visit
    token (ecToken) when one was presented: type 01, or type 02 with the token in card_sn as one province sends it.
    `use_token` is the e-credential's check of an ecToken (yibao.credential.service.use_token), passed in by the
    caller: the registry sits below the e-credential and does not import it.
    """
    if cert_type not in ("01", "02", "03"):
        raise InputError(f"'{cert_type}' is not a credential type (01, 02, 03)", field=f"{where}.mdtrt_cert_type")
    cert_no, card_sn = cert_no.strip(), card_sn.strip()
    if not cert_no:
        raise InputError("required field is empty (必填项为空): the credential must identify the person", field=f"{where}.mdtrt_cert_no")
    if session.info.get(PROVEN_BY_HOME) == (person.psn_no, cert_type, cert_no):
        # a person insured in another province of a federation: that province's node checked this very credential in
        # this call (yibao.federation), as it checks it again when it settles
        return None
    if cert_type == "01":
        token = use_token(session, cert_no, fixmedins_code, f"{where}.mdtrt_cert_no")
        if token.psn_no != person.psn_no:
            raise InputError("this ecToken belongs to another person", field=f"{where}.mdtrt_cert_no")
        return token
    if cert_type == "02":
        if cert_no.upper() != person.certno:
            raise InputError("is not the ID number of psn_no", field=f"{where}.mdtrt_cert_no")
        if card_sn and looks_like_ec_token(card_sn):
            token = use_token(session, card_sn, fixmedins_code, f"{where}.card_sn")
            if token.psn_no != person.psn_no:
                raise InputError("this ecToken belongs to another person", field=f"{where}.card_sn")
            return token
        return None
    if cert_no != (person.card_no or ""):
        raise InputError("is not this person's social-security card", field=f"{where}.mdtrt_cert_no")
    if not card_sn:
        raise InputError("required when mdtrt_cert_type is 03 (social-security card)", field=f"{where}.card_sn")
    if card_sn != (person.card_sn or ""):
        # the card identification code proves the physical card; its number alone is printed on it
        raise InputError("does not match the card", field=f"{where}.card_sn")
    return None


def looks_like_ec_token(text: str) -> bool:
    text = text.strip()
    return len(text) == 40 and text[6:8] == "ec" and text[:6].isdigit()


def person(session: Session, psn_no: str, where: str) -> PersonRow:
    found = sql.first(session, PERSON, psn_no=psn_no)
    if found is None:
        raise NotFound("no insured person with this psn_no", field=f"{where}.psn_no")
    return found


def enrolments_of(session: Session, psn_no: str) -> list[EnrolmentRow]:
    """Every enrolment of the person (all insurance types, all periods), with the employer's name."""
    return sql.rows(session, ENROLMENTS, psn_no=psn_no)


def active_enrolment(enrolments: list[EnrolmentRow], insutype: str, on: date, where: str) -> EnrolmentRow:
    """The enrolment in ``insutype`` in force on a day, if it pays benefits."""
    rows = [e for e in enrolments if e.insutype == insutype]
    if not rows:
        raise InputError(f"the person is not enrolled in insutype {insutype}", field=f"{where}.insutype")
    current = [e for e in rows if e.psn_insu_date <= on]
    if not current:
        raise InputError(f"enrolment in {insutype} starts after {on.isoformat()}", field=f"{where}.insutype")
    enrolment = max(current, key=lambda e: e.psn_insu_date)
    if enrolment.psn_insu_stas != "1":
        state = {"2": "paused", "4": "terminated", "0": "not insured"}.get(enrolment.psn_insu_stas, enrolment.psn_insu_stas)
        raise InputError(f"insurance {insutype} is {state} (psn_insu_stas {enrolment.psn_insu_stas}): no benefits",
                         field=f"{where}.insutype")
    return enrolment


def enrolled_types(enrolments: list[EnrolmentRow]) -> frozenset[str]:
    return frozenset(e.insutype for e in enrolments if e.psn_insu_stas == "1")


def identities_on(session: Session, psn_no: str, moment: datetime) -> list[str]:
    return [i.psn_idet_type for i in sql.rows(session, IDENTITIES, psn_no=psn_no, moment=moment)]


def operator_active(session: Session, fixmedins_code: str, opter_no: str) -> bool:
    """Whether this operator may sign in (9001) for this institution."""
    operator = session.get(Operator, (fixmedins_code, opter_no))
    return operator is not None and operator.active
