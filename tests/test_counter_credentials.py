"""What the counter presents must prove the person: 01 a live ecToken, 02 the ID number, 03 the card and its card_sn;
and the region's rule that account payments above a threshold need the patient's own confirmation, per credential type."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from flows import catalogue_codes, cert, fee, ok, person_with, serial, visit_token
from yibao.client import CounterClient
from yibao.core import clock
from yibao.policy.parameters import PolicyError, parse_family
from yibao.policy.service import policy_for
from yibao.registry.models import Account, Person

FAKE_VISIT = "370100202611230000000000000000"


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


@pytest.fixture(scope="module")
def person(db) -> Person:  # type: ignore[no-untyped-def]
    """An employee with a card and a well-filled account."""
    with db.unit_of_work(write=False) as session:
        return session.scalars(select(Person).join(Account, Account.psn_no == Person.psn_no)
                               .where(Account.balance_fen > 300_000, Person.card_no.is_not(None), Person.card_sn.is_not(None))
                               .order_by(Person.psn_no)).first()


def now() -> str:
    return clock.fmt_datetime(clock.now())


def register(counter: CounterClient, person: Person, credential: dict[str, str]) -> dict[str, Any]:
    return counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": now(), **credential,
                                          "ipt_otp_no": serial("CR"), "med_type": "11"}})


# -- every credential names the person ---------------------------------------------------------------

def inputs(person: Person, credential: dict[str, str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each transaction that reads a credential, with the block that carries it."""
    settle = {"psn_no": person.psn_no, "mdtrt_id": FAKE_VISIT, "medfee_sumamt": "10.00", "insutype": "310", **credential}
    return {
        "1101": ("data", {"data": {"psn_cert_type": "01", **credential}}),
        "2201": ("data",
                 {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": now(), "ipt_otp_no": serial("E"), **credential}}),
        "2206": ("data", {"data": settle}), "2207": ("data", {"data": settle}),
        "2303": ("data", {"data": settle}), "2304": ("data", {"data": settle}),
        "2401": ("mdtrtinfo", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", "med_type": "21", "ipt_no": serial("E"),
                                             "begntime": now(), **credential}}),
    }


@pytest.mark.parametrize("infno", ["1101", "2201", "2206", "2207", "2303", "2304", "2401"])
@pytest.mark.parametrize("credential", [{"mdtrt_cert_type": "02", "mdtrt_cert_no": ""}, {"mdtrt_cert_type": "02"},
                                        {"mdtrt_cert_type": "03", "mdtrt_cert_no": "", "card_sn": "x"},
                                        {"mdtrt_cert_type": "01", "mdtrt_cert_no": ""}])
def test_an_empty_credential_number_is_refused_naming_it(counter: CounterClient, person: Person, infno: str,
                                                         credential: dict[str, str]) -> None:
    block, body = inputs(person, credential)[infno]
    answer = counter.call(infno, body)
    assert answer["infcode"] == -1 and answer["err_msg"].startswith(f"input.{block}.mdtrt_cert_no:"), (infno, answer["err_msg"])


@pytest.mark.parametrize("infno", ["2101", "2102"])
def test_a_pharmacy_purchase_needs_the_credential_number(pharmacy: CounterClient, person: Person, codes, infno: str) -> None:  # type: ignore[no-untyped-def]
    drug = {"feedetl_sn": "1", "med_list_codg": codes["otc_capped"], "det_item_fee_sumamt": Decimal("10.00"), "cnt": 1,
            "pric": Decimal("10")}
    for blank in ("", "   "):
        answer = pharmacy.call(infno, {"data": {"psn_no": person.psn_no, "insutype": "310", "mdtrt_cert_type": "02", "mdtrt_cert_no": blank,
                                                "medfee_sumamt": Decimal("10.00")}, "drugdetail": [drug]})
        assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.mdtrt_cert_no:"), answer["err_msg"]


@pytest.fixture(scope="module")
def pharmacy(http) -> CounterClient:  # type: ignore[no-untyped-def]
    from conftest import secret_of

    client = CounterClient("http://testserver", "P37010000007", secret_of("P37010000007"), http=http)
    ok(client.sign_in())
    return client


def test_blank_credential_numbers_are_refused_after_trimming(counter: CounterClient, person: Person) -> None:
    for credential in ({"mdtrt_cert_type": "02", "mdtrt_cert_no": "   "}, {"mdtrt_cert_type": "01", "mdtrt_cert_no": " "}):
        answer = register(counter, person, credential)
        assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.mdtrt_cert_no:"), answer["err_msg"]


def test_an_id_number_must_be_the_persons(counter: CounterClient, person: Person, db) -> None:  # type: ignore[no-untyped-def]
    other = person_with(db, "310", skip={person.psn_no})
    wrong = register(counter, person, cert(other))
    assert wrong["infcode"] == -1 and wrong["err_msg"].startswith("input.data.mdtrt_cert_no:")
    assert register(counter, person, {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno.lower()})["infcode"] == 0


def test_a_card_needs_its_number_and_its_card_sn(counter: CounterClient, person: Person) -> None:
    card = {"mdtrt_cert_type": "03", "mdtrt_cert_no": person.card_no}
    no_sn = register(counter, person, card)
    assert no_sn["infcode"] == -1, no_sn
    assert no_sn["err_msg"].startswith("input.data.card_sn: required when mdtrt_cert_type is 03"), no_sn["err_msg"]
    wrong_sn = register(counter, person, {**card, "card_sn": "0" * 32})
    assert wrong_sn["infcode"] == -1 and wrong_sn["err_msg"].startswith("input.data.card_sn: does not match the card"), wrong_sn["err_msg"]
    wrong_card = register(counter, person, {**card, "mdtrt_cert_no": "Z00000000", "card_sn": person.card_sn})
    assert wrong_card["infcode"] == -1 and wrong_card["err_msg"].startswith("input.data.mdtrt_cert_no:")
    assert register(counter, person, {**card, "card_sn": person.card_sn})["infcode"] == 0


def test_an_ec_token_must_be_live_and_the_persons(counter: CounterClient, person: Person, db) -> None:  # type: ignore[no-untyped-def]
    other = person_with(db, "310", skip={person.psn_no})
    foreign = register(counter, person, {"mdtrt_cert_type": "01", "mdtrt_cert_no": visit_token(db, other, "H37010000001")})
    assert foreign["infcode"] == -1 and "another person" in foreign["err_msg"]
    elsewhere = register(counter, person, {"mdtrt_cert_type": "01", "mdtrt_cert_no": visit_token(db, person, "H37010000005")})
    assert elsewhere["infcode"] == -1 and "another institution" in elsewhere["err_msg"]
    assert register(counter, person, {"mdtrt_cert_type": "01", "mdtrt_cert_no": visit_token(db, person, "H37010000001")})["infcode"] == 0


# -- paying from the account above the threshold needs the patient's confirmation ---------------------

def visit_with_fees(counter: CounterClient, person: Person, credential: dict[str, str], item: str, amount: str) -> dict[str, Any]:
    mdtrt_id = ok(register(counter, person, credential))["data"]["mdtrt_id"]
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, item, amount)]}))
    return {"psn_no": person.psn_no, **credential, "med_type": "11", "medfee_sumamt": Decimal(amount), "psn_setlway": "01",
            "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "1", "insutype": "310"}


def card_of(person: Person) -> dict[str, str]:
    return {"mdtrt_cert_type": "03", "mdtrt_cert_no": person.card_no or "", "card_sn": person.card_sn or ""}


@pytest.mark.parametrize("credential", [cert, card_of], ids=["02", "03"])
def test_an_id_number_or_card_does_not_empty_the_account_above_the_threshold(counter: CounterClient, person: Person, codes,
                                                                                credential) -> None:  # type: ignore[no-untyped-def]
    data = visit_with_fees(counter, person, credential(person), codes["bing"], "300.00")  # 丙: all of it is the patient's to pay
    pre = counter.call("2206", {"data": data})
    paid = counter.call("2207", {"data": data})
    for answer in (pre, paid):
        assert answer["infcode"] == 0, answer["err_msg"]
        info = answer["output"]["setlinfo"]
        assert info["acct_pay"] == 0 and info["psn_cash_pay"] == Decimal("300.00")
        assert "personal account did not pay" in answer["warn_msg"] and "300.00" in answer["warn_msg"]


def test_below_the_threshold_an_id_number_pays_from_the_account(counter: CounterClient, person: Person, codes) -> None:  # type: ignore[no-untyped-def]
    data = visit_with_fees(counter, person, cert(person), codes["bing"], "150.00")
    paid = counter.call("2207", {"data": data})
    assert paid["infcode"] == 0 and paid["warn_msg"] == ""
    assert paid["output"]["setlinfo"]["acct_pay"] == Decimal("150.00")


def test_the_confirmed_e_credential_beside_the_id_number_pays_from_the_account(counter: CounterClient, person: Person, codes, db) -> None:  # type: ignore[no-untyped-def]
    confirmed = {**cert(person), "card_sn": visit_token(db, person, "H37010000001")}
    data = visit_with_fees(counter, person, confirmed, codes["bing"], "300.00")
    paid = ok(counter.call("2207", {"data": data}))["setlinfo"]
    assert paid["acct_pay"] == Decimal("300.00") and paid["psn_cash_pay"] == 0


def test_an_unconfirmed_e_credential_waits_for_the_patient(counter: CounterClient, person: Person, codes, db) -> None:  # type: ignore[no-untyped-def]
    pending = {**cert(person), "card_sn": visit_token(db, person, "H37010000001", confirmed=False)}
    data = visit_with_fees(counter, person, pending, codes["bing"], "300.00")
    assert ok(counter.call("2206", {"data": data}))["setlinfo"]["acct_pay"] == Decimal("300.00")
    refused = counter.call("2207", {"data": data})
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.data.acct_used_flag:") and "confirm" in refused["err_msg"]


def test_the_credential_types_that_need_confirmation_are_policy_by_date() -> None:
    assert policy_for("370100", "310", "in_service", date(2026, 10, 31)).pay_auth_cert_types == frozenset({"01"})
    assert policy_for("370100", "310", "in_service", date(2026, 11, 1)).pay_auth_cert_types == frozenset({"01", "02", "03"})
    assert policy_for("440300", "390", "all", date(2026, 11, 1)).pay_auth_cert_types == frozenset({"01", "02", "03"})
    document = {"reference": "test", "unit": "yuan", "pay_auth_cert_types": {"_unit": "cert_types", "all": {date(2024, 1, 1): [1, "02"]}}}
    with pytest.raises(PolicyError, match=r"credential\.yaml: pay_auth_cert_types\.all on 2024-01-01: .*quoted credential types"):
        parse_family(document, "370100/credential.yaml")
    document["pay_auth_cert_types"]["all"] = {date(2024, 1, 1): ["04"]}
    with pytest.raises(PolicyError, match="quoted credential types"):
        parse_family(document, "370100/credential.yaml")
