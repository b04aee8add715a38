"""1101 person lookup: credentials 02 and 03, the exact wire fields, history, refusals."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from yibao.client import CounterClient
from yibao.core import idcard
from yibao.registry.models import Account, Contribution, Enrolment, Identity, Person

FIELDS_DOC = Path(__file__).resolve().parents[2] / "shared" / "brief" / "interface-fields.md"
BASEINFO = {"psn_no", "psn_cert_type", "certno", "psn_name", "gend", "naty", "brdy", "age"}
INSUINFO = {"balc", "insutype", "psn_type", "psn_insu_stas", "psn_insu_date", "paus_insu_date", "cvlserv_flag", "insuplc_admdvs",
            "emp_name"}
IDETINFO = {"psn_idet_type", "psn_type_lv", "memo", "begntime", "endtime"}


def spec_fields(block: str) -> set[str]:
    """Field names listed under **Block** in interface-fields.md (the national spec as HIS clients use it)."""
    text = FIELDS_DOC.read_text(encoding="utf-8")
    section = text.split(f"**{block}**", 1)[1].split("**", 1)[0]
    return set(re.findall(r"^- `([a-z_]+)`", section, flags=re.M))


def test_our_field_sets_are_the_spec_fields() -> None:
    # The brief sits beside the checkout in development and CI; a bare clone elsewhere checks the constants alone.
    if not FIELDS_DOC.exists():
        assert len(BASEINFO) == 8 and len(INSUINFO) == 9 and len(IDETINFO) == 5
        return
    assert spec_fields("BaseInfo") == BASEINFO
    assert spec_fields("InsuInfo") == INSUINFO
    assert spec_fields("IdetInfo") == IDETINFO


@pytest.fixture(scope="module")
def employee(db) -> Person:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        return session.scalar(select(Person).join(Account, Account.psn_no == Person.psn_no).order_by(Person.psn_no).limit(1))


def lookup(counter: CounterClient, **data: str) -> dict:
    return counter.call("1101", {"data": {"psn_cert_type": "01", **data}})


def test_lookup_by_id_number(counter: CounterClient, employee: Person, db) -> None:  # type: ignore[no-untyped-def]
    answer = lookup(counter, mdtrt_cert_type="02", mdtrt_cert_no=employee.certno)
    assert answer["infcode"] == 0, answer
    out = answer["output"]
    assert set(out) == {"baseinfo", "insuinfo", "idetinfo"}
    base = out["baseinfo"]
    assert set(base) == BASEINFO
    assert base["psn_no"] == employee.psn_no and base["certno"] == employee.certno and base["psn_name"] == employee.psn_name
    birth, gend = idcard.validate(employee.certno)
    assert base["brdy"] == birth.isoformat() and base["gend"] == gend
    assert re.fullmatch(r"\d{1,3}\.\d", str(base["age"]))
    assert all(set(row) == INSUINFO for row in out["insuinfo"])
    types = {row["insutype"] for row in out["insuinfo"]}
    assert "310" in types and "330" in types
    with db.unit_of_work(write=False) as session:
        balance = session.get(Account, employee.psn_no).balance_fen
    account_row = next(r for r in out["insuinfo"] if r["insutype"] == "310")
    assert Decimal(str(account_row["balc"])) * 100 == balance
    assert account_row["insuplc_admdvs"] == employee.psn_no[:6]


def test_lookup_by_social_security_card(counter: CounterClient, employee: Person) -> None:
    answer = lookup(counter, mdtrt_cert_type="03", mdtrt_cert_no=employee.card_no, card_sn=employee.card_sn)
    assert answer["infcode"] == 0 and answer["output"]["baseinfo"]["psn_no"] == employee.psn_no


def test_card_needs_its_identification_code(counter: CounterClient, employee: Person) -> None:
    wrong = lookup(counter, mdtrt_cert_type="03", mdtrt_cert_no=employee.card_no, card_sn="0" * 32)
    assert wrong["infcode"] == -1 and wrong["err_msg"].startswith("input.data.card_sn:")
    unknown = lookup(counter, mdtrt_cert_type="03", mdtrt_cert_no="Z00000000", card_sn="0" * 32)
    assert unknown["infcode"] == -1 and unknown["err_msg"].startswith("input.data.mdtrt_cert_no:")


def test_name_and_certno_cross_checks(counter: CounterClient, employee: Person) -> None:
    wrong_name = lookup(counter, mdtrt_cert_type="02", mdtrt_cert_no=employee.certno, psn_name="某某某")
    assert wrong_name["infcode"] == -1 and wrong_name["err_msg"].startswith("input.data.psn_name:")
    assert lookup(counter, mdtrt_cert_type="02", mdtrt_cert_no=employee.certno, psn_name=employee.psn_name)["infcode"] == 0
    other = idcard.make("110105", date(1980, 1, 1), 11)
    mismatch = lookup(counter, mdtrt_cert_type="03", mdtrt_cert_no=employee.card_no, card_sn=employee.card_sn, certno=other)
    assert mismatch["infcode"] == -1 and mismatch["err_msg"].startswith("input.data.certno:")


def test_an_unknown_e_credential_token_is_refused(counter: CounterClient) -> None:
    answer = lookup(counter, mdtrt_cert_type="01", mdtrt_cert_no="370100ecmecib0000000000000000000000")
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.mdtrt_cert_no:") and "unknown ecToken" in answer["err_msg"]


def test_identities_and_history(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work() as session:
        person = session.scalar(select(Person).order_by(Person.psn_no.desc()).limit(1))
        session.add(Identity(psn_no=person.psn_no, psn_idet_type="2102", psn_type_lv=None, memo="低保",
                             begntime=datetime(2025, 1, 1), endtime=None))
        first = session.scalar(select(func.min(Enrolment.psn_insu_date)).where(Enrolment.psn_no == person.psn_no))
    now = lookup(counter, mdtrt_cert_type="02", mdtrt_cert_no=person.certno)["output"]
    assert any(i["psn_idet_type"] == "2102" and i["begntime"] == "2025-01-01 00:00:00" and set(i) == IDETINFO for i in now["idetinfo"])
    before = (first - timedelta(days=1)).strftime("%Y-%m-%d 00:00:00")
    history = lookup(counter, mdtrt_cert_type="02", mdtrt_cert_no=person.certno, begntime=before)["output"]
    assert history["insuinfo"] == [] and history["idetinfo"] == []
    bad = lookup(counter, mdtrt_cert_type="02", mdtrt_cert_no=person.certno, begntime="soon")
    assert bad["infcode"] == -1 and bad["err_msg"].startswith("input.data.begntime:")


def test_registry_invariants_of_the_demo(db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        people = session.scalars(select(Person)).all()
        assert len(people) == 400
        for person in people:
            birth, gend = idcard.validate(person.certno)
            assert birth == person.brdy and gend == person.gend
        credits = dict(session.execute(select(Contribution.psn_no,
                                              func.sum(Contribution.acct_cred_fen)).group_by(Contribution.psn_no)).tuples().all())
        for account in session.scalars(select(Account)):
            assert account.balance_fen == account.opening_fen + credits.get(account.psn_no, 0)
        # every person has a basic insurance: employees' 310 or residents' 390
        basic = set(session.scalars(select(Enrolment.psn_no).where(Enrolment.insutype.in_(("310", "390")))))
        assert basic == {p.psn_no for p in people}
        assert len({p.hshld_id for p in people}) < len(people)
