"""Finding insured people by credential and describing them the way 1101 answers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yibao.core import clock, idcard
from yibao.core.errors import InputError, NotFound
from yibao.core.money import yuan
from yibao.registry.models import Account, Employer, Enrolment, Identity, Person

ID_CARD = "01"  # psn_cert_type: resident identity card


def find_by_id_number(session: Session, certno: str, psn_cert_type: str = ID_CARD, field: str = "certno") -> Person:
    if psn_cert_type == ID_CARD:
        idcard.validate(certno, field)
    person = session.scalar(select(Person).where(Person.psn_cert_type == psn_cert_type, Person.certno == certno.strip().upper()))
    if person is None:
        raise NotFound("no insured person holds this certificate number", field=field)
    return person


def find_by_card(session: Session, card_no: str, card_sn: str, field: str = "mdtrt_cert_no") -> Person:
    person = session.scalar(select(Person).where(Person.card_no == card_no.strip()))
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


def person_answer(session: Session, person: Person, as_of: datetime | None = None) -> dict[str, Any]:
    """``baseinfo``, ``insuinfo[]`` and ``idetinfo[]`` of 1101."""
    moment = as_of or clock.now()
    enrolments = session.execute(
        select(Enrolment, Employer.emp_name)
        .outerjoin(Employer, Employer.emp_no == Enrolment.emp_no)
        .where(Enrolment.psn_no == person.psn_no, Enrolment.psn_insu_date <= moment.date())
        .order_by(Enrolment.insutype)
    ).all()
    account = session.get(Account, person.psn_no)
    identities = session.scalars(
        select(Identity)
        .where(Identity.psn_no == person.psn_no, Identity.begntime <= moment)
        .where(or_(Identity.endtime.is_(None), Identity.endtime >= moment))
        .order_by(Identity.begntime)
    ).all()
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
                "emp_name": emp_name or "",
            }
            for e, emp_name in enrolments
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


def verify_credential(session: Session, person: Person, cert_type: str, cert_no: str, card_sn: str, where: str,
                      fixmedins_code: str) -> Any:
    """The credential a counter presents must belong to the person it names (psn_no).

    Returns the visit token (ecToken) when one was presented: type 01, or type 02 with the
    token in card_sn as one province sends it.
    """
    from yibao.credential.service import use_token

    if cert_type == "01":
        token = use_token(session, cert_no, fixmedins_code, f"{where}.mdtrt_cert_no")
        if token.psn_no != person.psn_no:
            raise InputError("this ecToken belongs to another person", field=f"{where}.mdtrt_cert_no")
        return token
    if cert_type == "02":
        if cert_no and cert_no.strip().upper() != person.certno:
            raise InputError("does not belong to psn_no", field=f"{where}.mdtrt_cert_no")
        if card_sn and looks_like_ec_token(card_sn):
            token = use_token(session, card_sn, fixmedins_code, f"{where}.card_sn")
            if token.psn_no != person.psn_no:
                raise InputError("this ecToken belongs to another person", field=f"{where}.card_sn")
            return token
        return None
    if cert_type == "03":
        if cert_no.strip() != (person.card_no or "") or (card_sn and card_sn.strip() != person.card_sn):
            raise InputError("is not this person's social-security card", field=f"{where}.mdtrt_cert_no")
        return None
    raise InputError(f"'{cert_type}' is not a credential type (01, 02, 03)", field=f"{where}.mdtrt_cert_type")


def looks_like_ec_token(text: str) -> bool:
    text = text.strip()
    return len(text) == 40 and text[6:8] == "ec" and text[:6].isdigit()


def person(session: Session, psn_no: str, where: str) -> Person:
    found = session.get(Person, psn_no)
    if found is None:
        raise NotFound("no insured person with this psn_no", field=f"{where}.psn_no")
    return found


def active_enrolment(session: Session, psn_no: str, insutype: str, on: date, where: str) -> Enrolment:
    rows = session.scalars(select(Enrolment).where(Enrolment.psn_no == psn_no, Enrolment.insutype == insutype)).all()
    if not rows:
        raise InputError(f"the person is not enrolled in insutype {insutype}", field=f"{where}.insutype")
    current = [e for e in rows if e.psn_insu_date <= on]
    if not current:
        raise InputError(f"enrolment in {insutype} starts after {on.isoformat()}", field=f"{where}.insutype")
    enrolment = max(current, key=lambda e: e.psn_insu_date)
    if enrolment.psn_insu_stas != "1":
        state = {"2": "paused", "4": "terminated", "0": "not insured"}.get(enrolment.psn_insu_stas, enrolment.psn_insu_stas)
        raise InputError(f"insurance {insutype} is {state} (psn_insu_stas {enrolment.psn_insu_stas}): no benefits", field=f"{where}.insutype")
    return enrolment


def enrolled_types(session: Session, psn_no: str) -> frozenset[str]:
    return frozenset(session.scalars(select(Enrolment.insutype).where(Enrolment.psn_no == psn_no, Enrolment.psn_insu_stas == "1")))


def identities_on(session: Session, psn_no: str, moment: datetime) -> list[str]:
    return list(session.scalars(select(Identity.psn_idet_type).where(Identity.psn_no == psn_no, Identity.begntime <= moment)
                                .where(or_(Identity.endtime.is_(None), Identity.endtime >= moment))))
