"""Reusable counter flows (what an HIS does) for the settlement tests."""

from __future__ import annotations

import itertools
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from yibao.client import CounterClient
from yibao.codes.models import CatalogItem
from yibao.core import clock
from yibao.registry.models import Account, Enrolment, Person
from yibao.store.db import Database

_serial = itertools.count(1)


def serial(prefix: str) -> str:
    return f"{prefix}{next(_serial):08d}"


def catalogue_codes(db: Database) -> dict[str, str]:
    """One demo code of each class without restrictions or caps (甲, 乙, 丙) and a capped 乙 consumable."""
    with db.unit_of_work(write=False) as session:
        def pick(level: str, capped: bool = False, list_type: str | None = None, rx: str | None = None) -> str:
            stmt = select(CatalogItem.med_list_codg).where(CatalogItem.chrgitm_lv == level, CatalogItem.enddate.is_(None),
                                                           CatalogItem.lmt_gend.is_(None), CatalogItem.lmt_age_min.is_(None),
                                                           CatalogItem.lmt_age_max.is_(None), CatalogItem.lmt_hosp_lv.is_(None))
            stmt = stmt.where(CatalogItem.pric_uplmt_fen.is_not(None) if capped else CatalogItem.pric_uplmt_fen.is_(None))
            if list_type:
                stmt = stmt.where(CatalogItem.list_type == list_type)
            if rx:
                stmt = stmt.where(CatalogItem.rx_flag == rx)
            return session.scalar(stmt.order_by(CatalogItem.med_list_codg).limit(1))

        return {"jia": pick("01", list_type="102"), "yi": pick("02", list_type="102"), "bing": pick("03", list_type="201"),
                "rx_capped": pick("02", capped=True, list_type="101", rx="1"),
                "otc_capped": pick("01", capped=True, list_type="101", rx="0")}


def person_with(db: Database, insutype: str, *, region: str = "370100", retired: bool | None = None, min_balance: int = 0,
                skip: set[str] | None = None) -> Person:
    with db.unit_of_work(write=False) as session:
        stmt = (select(Person).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                .where(Enrolment.insutype == insutype, Enrolment.psn_insu_stas == "1", Enrolment.insuplc_admdvs == region,
                       Enrolment.cvlserv_flag == "0"))
        if retired is not None:
            stmt = stmt.where(Enrolment.psn_type.like("12%") if retired else Enrolment.psn_type.like("11%"))
        if min_balance:
            stmt = stmt.join(Account, Account.psn_no == Person.psn_no).where(Account.balance_fen >= min_balance)
        for person in session.scalars(stmt.order_by(Person.psn_no)):
            if not skip or person.psn_no not in skip:
                return person
    raise LookupError("no such person in the demo")


def fresh_person(db: Database, insutype: str, *, skip: set[str] | None = None, **kwargs: Any) -> Person:
    """Like `person_with`, but a person without any visit yet. Tests run in any order and `person_with` answers every
    test that asks alike with the same person: a year's deductible, cap or open stay left by one would change another's
    answers."""
    from yibao.encounter.models import Visit

    with db.unit_of_work(write=False) as session:
        seen = set(session.scalars(select(Visit.psn_no)))
    return person_with(db, insutype, skip=seen | (skip or set()), **kwargs)


def fee(mdtrt_id: str, psn_no: str, code: str, amount: str, *, cnt: str = "1", batch: str = "B1", rxno: str = "") -> dict[str, Any]:
    pric = (Decimal(amount) / Decimal(cnt)).quantize(Decimal("0.000001"))
    return {"feedetl_sn": serial("F"), "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": batch, "rxno": rxno,
            "rx_circ_flag": "0", "fee_ocur_time": clock.fmt_datetime(clock.now()), "med_list_codg": code,
            "medins_list_codg": "H-" + code[:10],
            "det_item_fee_sumamt": Decimal(amount), "cnt": Decimal(cnt), "pric": pric, "bilg_dept_codg": "A03", "bilg_dept_name": "内科",
            "bilg_dr_codg": "D37010000001", "bilg_dr_name": "医生", "hosp_appr_flag": "0"}


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer.get("infcode") == 0, answer.get("err_msg")
    return answer["output"]


def cert(person: Person) -> dict[str, str]:
    return {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno}


def visit_token(db: Database, person: Person, fixmedins_code: str, *, confirmed: bool = True) -> str:
    """An ecToken of the person at the institution as 1162 leaves it (from an active phone), with the account payment
    confirmed in the app (pay_authorized_at) unless ``confirmed`` is False."""
    from yibao.credential.models import Channel, Device, VisitToken

    now = clock.now()
    token = f"{fixmedins_code[1:7]}ec{secrets.token_hex(16)}"
    with db.unit_of_work() as session:
        device = Device(device_id=secrets.token_hex(16), psn_no=person.psn_no, chnl_id=session.scalar(select(Channel.chnl_id).limit(1)),
                        device_no=10_000_000 + secrets.randbelow(10**9), label="test phone", status="active", registered_at=now)
        session.add(device)
        session.add(VisitToken(ec_token=token, psn_no=person.psn_no, fixmedins_code=fixmedins_code, business_type="01101",
                               device_id=device.device_id, issued_at=now, expires_at=now + timedelta(hours=1), uses=0, max_uses=50,
                               pay_authorized_at=now if confirmed else None))
    return token


def confirmed_cert(db: Database, person: Person, fixmedins_code: str = "H37010000001") -> dict[str, str]:
    """The ID number with the e-credential's confirmed ecToken in card_sn (as one province sends it): may pay from the account."""
    return {**cert(person), "card_sn": visit_token(db, person, fixmedins_code)}


def outpatient(counter: CounterClient, person: Person, insutype: str, lines: list[tuple[str, str]], *, acct: str = "1",
               med_type: str = "11", settle: bool = True, credential: dict[str, str] | None = None, dise_codg: str = "") -> dict[str, Any]:
    """Register, upload diagnoses and fees, pre-settle and settle; returns the 2207 output (or 2206's).

    ``credential`` defaults to the ID number (02), with which the account pays only up to the region's threshold; a
    med_type 14 visit names the person's registered disease in ``dise_codg`` (see `registered_disease`)."""
    credential = credential or cert(person)
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": insutype, "begntime": clock.fmt_datetime(clock.now()),
                                             **credential, "ipt_otp_no": serial("MZ"), "atddr_no": "D37010000001", "dr_name": "医生",
                                             "dept_code": "A03", "dept_name": "内科", "caty": "A03", "med_type": med_type}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": med_type,
                                           "begntime": clock.fmt_datetime(clock.now()), "dise_codg": dise_codg},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染",
                                           "diag_dept": "内科", "dise_dor_no": "D37010000001", "dise_dor_name": "医生",
                                           "diag_time": clock.fmt_datetime(clock.now()), "vali_flag": "1"}]}))
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]}))
    total = sum(Decimal(a) for _, a in lines)
    data = {"psn_no": person.psn_no, **credential, "med_type": med_type, "medfee_sumamt": total, "psn_setlway": "01",
            "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": acct, "insutype": insutype}
    pre = ok(counter.call("2206", {"data": data}))
    if not settle:
        return pre
    return ok(counter.call("2207", {"data": data}))


# -- one step at a time: a visit settled in several parts (registration fee first, prescriptions later) --------

def register(counter: CounterClient, person: Person, insutype: str, *, med_type: str = "11", credential: dict[str, str] | None = None
             ) -> str:
    """2201: an outpatient registration; its mdtrt_id."""
    out = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": insutype, "begntime": clock.fmt_datetime(clock.now()),
                                             **(credential or cert(person)), "ipt_otp_no": serial("MZ"), "atddr_no": "D37010000001",
                                             "dr_name": "医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03",
                                             "med_type": med_type}}))
    return out["data"]["mdtrt_id"]


def upload(counter: CounterClient, mdtrt_id: str, person: Person, lines: list[tuple[str, str]], *,
           batch: str = "B1") -> list[dict[str, Any]]:
    """2204: fee lines of one charging batch; the per-line answers."""
    return ok(counter.call("2204",
                           {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount, batch=batch) for code, amount in lines]}))["result"]


def settle_input(person: Person, mdtrt_id: str, insutype: str, total: str, *, batch: str = "B1", acct: str = "0", med_type: str = "11",
                 credential: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``input`` of 2206/2207 for the unsettled lines of ``batch`` (their sum is ``total``)."""
    return {"data": {"psn_no": person.psn_no, **(credential or cert(person)), "med_type": med_type, "medfee_sumamt": Decimal(total),
                     "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": batch, "acct_used_flag": acct, "insutype": insutype}}


def registered_disease(counter: CounterClient, person: Person, insutype: str, code: str = "M03900") -> str:
    """The person's registration (2503) of a chronic disease, filed now unless one stands already (5301); its 1309 code."""
    listed = ok(counter.call("5301", {"data": {"psn_no": person.psn_no}}))["feedetail"]
    if code not in {x["opsp_dise_code"] for x in listed}:
        with_region = ok(counter.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "psn_cert_type": "01"}}))
        region = next(i["insuplc_admdvs"] for i in with_region["insuinfo"] if i["insutype"] == insutype)
        today = clock.today()
        ok(counter.call("2503", {"data": {"psn_no": person.psn_no, "insutype": insutype, "opsp_dise_code": code, "insu_optins": region,
                                          "ide_fixmedins_no": counter.fixmedins_code, "hosp_ide_date": today.isoformat(),
                                          "diag_dr_codg": "D37010000001", "diag_dr_name": "医生", "begndate": today.isoformat()}}))
    return code


# -- the people's app (REST) ---------------------------------------------------------------------------------------------

def app_token(http: Any, person: Person, password: str = "135790") -> str:
    """Activate the person's e-credential on a new phone (the demo face check) and answer the session's bearer token."""
    from yibao.credential.realperson import demo_face

    reply = http.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name,
                                                    "password": password, "face": demo_face(person.certno), "liveness": 0.97})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["token"])


def signed_in(http: Any, person: Person, password: str = "135790") -> dict[str, str]:
    """The authorization header of the person's app session (`app_token`)."""
    return {"authorization": f"Bearer {app_token(http, person, password)}"}
