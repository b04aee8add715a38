"""Outpatient settlement through the gateway: 2201–2208, the invariants, reversal, pharmacy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows import catalogue_codes, cert, confirmed_cert, fee, fresh_person, ok, outpatient, person_with, serial
from yibao.client import CounterClient
from yibao.core import clock
from yibao.ledger.models import YearTotal
from yibao.registry.models import Account


def d(value) -> Decimal:  # type: ignore[no-untyped-def]
    return Decimal(str(value))


def check_invariants(info: dict) -> None:
    assert d(info["medfee_sumamt"]) == d(info["fund_pay_sumamt"]) + d(info["psn_part_amt"]) + d(info["hosp_part_amt"])
    assert d(info["psn_part_amt"]) == d(info["acct_pay"]) + d(info["psn_cash_pay"]) + d(info["acct_mulaid_pay"])
    assert d(info["medfee_sumamt"]) == (d(info["fulamt_ownpay_amt"]) + d(info["overlmt_selfpay"]) + d(info["preselfpay_amt"])
                                        + d(info["inscp_scp_amt"]))


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def test_outpatient_visit_settles_and_reverses(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", retired=False, min_balance=100_000)  # its first visit of the year, whatever ran before
    with db.unit_of_work(write=False) as session:
        balance = session.get(Account, person.psn_no).balance_fen
    # 550.00 from the account is above the region's 200.00: the patient confirmed it in the app (the ecToken in card_sn)
    credential = confirmed_cert(db, person)
    lines = [(codes["jia"], "300.00"), (codes["yi"], "200.00"), (codes["bing"], "50.00")]
    pre = outpatient(counter, person, "310", lines, settle=False, credential=credential)
    out = outpatient(counter, person, "310", lines, credential=credential)
    info = out["setlinfo"]
    check_invariants(info)
    assert len(info["setl_id"]) == 30 and info["medins_setl_id"].startswith("H37010000001")
    # level-3 hospital, in-service employee, first outpatient visit of the year: the 800.00 deductible absorbs 480.00 in scope
    assert d(info["fulamt_ownpay_amt"]) == Decimal("50.00") and d(info["preselfpay_amt"]) == Decimal("20.00")
    assert d(info["inscp_scp_amt"]) == Decimal("480.00") and d(info["act_pay_dedc"]) == Decimal("480.00") and d(info["hifp_pay"]) == 0
    assert d(info["acct_pay"]) == Decimal("550.00") and d(info["balc"]) * 100 == balance - 55_000
    assert pre["setlinfo"]["medfee_sumamt"] == info["medfee_sumamt"]
    assert sum(d(x["fund_payamt"]) for x in out["setldetail"]) == d(info["fund_pay_sumamt"])
    assert out["setldetail"][0]["fund_pay_type"] == "310100" and "起付线" in out["setldetail"][0]["setl_proc_info"]
    with db.unit_of_work(write=False) as session:
        assert session.get(YearTotal, (person.psn_no, clock.now().year)).otp_dedc == 48_000
    reversed_ = ok(counter.call("2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": info["mdtrt_id"], "psn_no": person.psn_no}}))
    assert d(reversed_["setlinfo"]["medfee_sumamt"]) == Decimal("-550.00") and reversed_["setlinfo"]["setl_id"] != info["setl_id"]
    with db.unit_of_work(write=False) as session:
        assert session.get(YearTotal, (person.psn_no, clock.now().year)).otp_dedc == 0
        assert session.get(Account, person.psn_no).balance_fen == balance
    again = ok(counter.call("2207", {"data": {"psn_no": person.psn_no, **credential, "med_type": "11", "medfee_sumamt": Decimal("550.00"),
                                              "psn_setlway": "01", "mdtrt_id": info["mdtrt_id"], "chrg_bchno": "B1", "acct_used_flag": "1",
                                              "insutype": "310"}}))
    assert {k: v for k, v in again["setlinfo"].items() if k not in ("setl_id", "setl_time", "medins_setl_id")} == \
        {k: v for k, v in info.items() if k not in ("setl_id", "setl_time", "medins_setl_id")}
    twice = counter.call("2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": info["mdtrt_id"], "psn_no": person.psn_no}})
    assert twice["infcode"] == -1 and "already reversed" in twice["err_msg"]


def test_settlement_refusals(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False)
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                             **cert(person), "ipt_otp_no": serial("MZ")}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    base = {"psn_no": person.psn_no, **cert(person), "med_type": "11", "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1",
            "acct_used_flag": "0", "insutype": "310"}
    nothing = counter.call("2207", {"data": {**base, "medfee_sumamt": "0"}})
    assert nothing["infcode"] == -1 and "no unsettled fee lines" in nothing["err_msg"]
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "10.00")]}))
    wrong_total = counter.call("2207", {"data": {**base, "medfee_sumamt": "11.00"}})
    assert wrong_total["infcode"] == -1 and wrong_total["err_msg"].startswith("input.data.medfee_sumamt:")
    other = person_with(db, "310", retired=False, skip={person.psn_no})
    wrong_person = counter.call("2207", {"data": {**base, "medfee_sumamt": "10.00", "mdtrt_cert_no": other.certno}})
    assert wrong_person["infcode"] == -1 and wrong_person["err_msg"].startswith("input.data.mdtrt_cert_no:")
    bad_line = fee(mdtrt_id, person.psn_no, codes["jia"], "10.00")
    bad_line["det_item_fee_sumamt"] = Decimal("99.00")
    mismatch = counter.call("2204", {"feedetail": [bad_line]})
    assert mismatch["infcode"] == -1 and mismatch["err_msg"].startswith("input.feedetail[0].det_item_fee_sumamt:")
    paid = ok(counter.call("2207", {"data": {**base, "medfee_sumamt": "10.00"}}))
    cancel = counter.call("2202", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id, "ipt_otp_no": "x"}})
    assert cancel["infcode"] == -1 and "reverse it first" in cancel["err_msg"]
    assert paid["setlinfo"]["psn_cash_pay"] == paid["setlinfo"]["psn_part_amt"]


def test_fee_line_answer_splits_each_line(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False)
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                             **cert(person), "ipt_otp_no": serial("MZ")}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    result = ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["yi"], "100.00"),
                                                    fee(mdtrt_id, person.psn_no, "XNOTINCATALOG0000000001", "30.00")]}))["result"]
    assert [r["preselfpay_amt"] for r in result] == [Decimal("10.00"), Decimal("0.00")]
    assert result[1]["fulamt_ownpay_amt"] == Decimal("30.00") and "目录外" in result[1]["memo"]
    assert ok(counter.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": person.psn_no}})) == {}
    none_left = counter.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": person.psn_no}})
    assert none_left["infcode"] == -1


def test_pharmacy_purchase_needs_a_prescription_for_rx_drugs(http, db, codes) -> None:  # type: ignore[no-untyped-def]
    from conftest import secret_of

    pharmacy = CounterClient("http://testserver", "P37010000007", secret_of("P37010000007"), http=http)
    ok(pharmacy.sign_in())
    person = person_with(db, "310", retired=False, min_balance=10_000)
    common = {"psn_no": person.psn_no, "insutype": "310", **cert(person), "acct_used_flag": "1", "psn_setlway": "01"}
    drug = {"feedetl_sn": "1", "med_list_codg": codes["rx_capped"], "det_item_fee_sumamt": Decimal("20.00"), "cnt": 1,
            "pric": Decimal("20")}
    refused = pharmacy.call("2102", {"data": {**common, "medfee_sumamt": Decimal("20.00")}, "drugdetail": [drug]})
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.drugdetail[0].rxno:")
    pre = ok(pharmacy.call("2101", {"data": {**common, "medfee_sumamt": Decimal("20.00")}, "drugdetail": [{**drug, "rxno": "RX001"}]}))
    paid = ok(pharmacy.call("2102", {"data": {**common, "medfee_sumamt": Decimal("20.00")}, "drugdetail": [{**drug, "rxno": "RX001"}]}))
    assert pre["setlinfo"]["medfee_sumamt"] == paid["setlinfo"]["medfee_sumamt"] == Decimal("20.00")
    assert paid["setlinfo"]["clr_type"] == "41" and paid["setlinfo"]["hifp_pay"] == 0  # the demo region's pool pays nothing at pharmacies
    assert paid["setlinfo"]["acct_pay"] == Decimal("20.00")
    back = ok(pharmacy.call("2103", {"data": {"setl_id": paid["setlinfo"]["setl_id"], "mdtrt_id": paid["setlinfo"]["mdtrt_id"],
                                              "psn_no": person.psn_no}}))
    assert back["setlinfo"]["acct_pay"] == Decimal("-20.00")
    outpatient_at_pharmacy = pharmacy.call("2201", {"data": {**common, "begntime": clock.fmt_datetime(clock.now()), "ipt_otp_no": "X1",
                                                             "med_type": "11"}})
    assert outpatient_at_pharmacy["infcode"] == -1 and outpatient_at_pharmacy["err_msg"].startswith("input.data.med_type:")


# -- a fee line happens within its visit ----------------------------------------------------------------

@pytest.mark.parametrize(("offset_s", "accepted"),
                         [(-11 * 60, False), (-9 * 60, True), (250, True), (400, False), (-10 * 365 * 86400, False)])
def test_a_fee_line_lies_within_its_visit(counter: CounterClient, db, codes, offset_s: int, accepted: bool) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    person = person_with(db, "310", retired=False)
    begun = clock.now()
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(begun),
                                             **cert(person), "ipt_otp_no": serial("FT")}}))
    line = fee(reg["data"]["mdtrt_id"], person.psn_no, codes["jia"], "10.00")
    line["fee_ocur_time"] = clock.fmt_datetime(begun + timedelta(seconds=offset_s))
    answer = counter.call("2204", {"feedetail": [line]})
    if accepted:
        assert answer["infcode"] == 0, answer["err_msg"]
    else:
        assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.feedetail[0].fee_ocur_time:"), answer["err_msg"]
        assert ("before the visit began" if offset_s < 0 else "in the future") in answer["err_msg"]


def test_a_back_dated_line_cannot_escape_an_age_restriction(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from yibao.registry.models import Enrolment, Person

    children_only = "XR03DCA041A008010698832"  # 孟鲁司特钠咀嚼片 in the demo catalogue: 限14岁及以下
    with db.unit_of_work(write=False) as session:
        adult = session.scalars(select(Person).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                                .where(Enrolment.insutype == "310", Enrolment.psn_insu_stas == "1",
                                       Person.brdy < clock.today().replace(year=clock.today().year - 30))
                                .order_by(Person.psn_no)).first()
    reg = ok(counter.call("2201", {"data": {"psn_no": adult.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                             **cert(adult), "ipt_otp_no": serial("AG")}}))
    line = fee(reg["data"]["mdtrt_id"], adult.psn_no, children_only, "30.00")
    line["fee_ocur_time"] = f"{adult.brdy.year + 10}-06-01 10:00:00"  # when the patient was ten
    back_dated = counter.call("2204", {"feedetail": [line]})
    assert back_dated["infcode"] == -1 and back_dated["err_msg"].startswith("input.feedetail[0].fee_ocur_time:"), back_dated["err_msg"]
    line["fee_ocur_time"] = clock.fmt_datetime(clock.now())
    today = ok(counter.call("2204", {"feedetail": [line]}))["result"][0]
    assert today["fulamt_ownpay_amt"] == Decimal("30.00") and "14岁" in today["memo"]


def test_a_pharmacy_drug_line_lies_within_the_purchase(http, db, codes) -> None:  # type: ignore[no-untyped-def]
    from conftest import secret_of

    pharmacy = CounterClient("http://testserver", "P37010000007", secret_of("P37010000007"), http=http)
    ok(pharmacy.sign_in())
    person = person_with(db, "310", retired=False)
    drug = {"feedetl_sn": "1", "med_list_codg": codes["otc_capped"], "det_item_fee_sumamt": Decimal("10.00"), "cnt": 1,
            "pric": Decimal("10"),
            "fee_ocur_time": "2020-01-01 09:00:00"}
    answer = pharmacy.call("2101", {"data": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "medfee_sumamt": Decimal("10.00")},
                                    "drugdetail": [drug]})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.drugdetail[0].fee_ocur_time:"), answer["err_msg"]


def test_the_a_variants_are_aliases(http, counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    """2203A, 2206A and 2207A (sent by some provinces' clients) are served as 2203, 2206 and 2207, on their own paths too."""
    from conftest import HOSPITAL, secret_of
    from flows import register, settle_input, upload
    from helpers import encode, post_signed

    person = person_with(db, "390")
    mdtrt_id = register(counter, person, "390")
    ok(counter.call("2203A", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "11",
                                            "begntime": clock.fmt_datetime(clock.now())},
                              "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900",
                                            "diag_name": "急性上呼吸道感染"}]}))
    upload(counter, mdtrt_id, person, [(codes["jia"], "60.00")])
    pre = ok(counter.call("2206", settle_input(person, mdtrt_id, "390", "60.00")))
    pre_a = post_signed(http, encode(counter.envelope("2206A", settle_input(person, mdtrt_id, "390", "60.00"))), HOSPITAL,
                        secret_of(HOSPITAL), path="/fsi/api/outpatientSettleService/preSettletmentA")
    assert pre_a["infcode"] == 0, pre_a["err_msg"]
    assert pre_a["output"]["setlinfo"]["hifp_pay"] == pre["setlinfo"]["hifp_pay"] and pre_a["output"]["setldetail"] == pre["setldetail"]
    paid = ok(counter.call("2207A", settle_input(person, mdtrt_id, "390", "60.00")))["setlinfo"]
    assert paid["hifp_pay"] == pre["setlinfo"]["hifp_pay"] and len(paid["setl_id"]) == 30


def test_queries_answer_what_the_his_sent(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    """5204 and 5203 carry every field of the spec's answer with the platform's values: what 2204 sent about each line,
    the catalogue's spec and form, the institution's region (fixmedins_poolarea), who uploaded it."""
    from flows import register, settle_input

    person = person_with(db, "390")
    mdtrt_id = register(counter, person, "390")
    line = {**fee(mdtrt_id, person.psn_no, codes["otc_capped"], "10.00"), "sin_dos_dscr": "0.5g", "used_frqu_dscr": "每日三次",
            "prd_days": "7", "medc_way_dscr": "口服", "acord_dept_codg": "A20", "acord_dept_name": "药房", "orders_dr_code": "Y001",
            "orders_dr_name": "药师", "etip_flag": "0", "dscg_tkdrug_flag": "0", "matn_fee_flag": "0", "hosp_appr_flag": "1"}
    ok(counter.call("2204", {"feedetail": [line]}))
    paid = ok(counter.call("2207", settle_input(person, mdtrt_id, "390", "10.00")))["setlinfo"]
    row = ok(counter.call("5204", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id}}))["feedetail"][0]
    assert (row["sin_dos_dscr"], row["used_frqu_dscr"], row["medc_way_dscr"], d(row["prd_days"])) == ("0.5g", "每日三次", "口服",
                                                                                                      Decimal(7))
    assert (row["acord_dept_codg"], row["orders_dr_name"], row["hosp_appr_flag"]) == ("A20", "药师", "1")
    assert row["spec"] and row["dosform_name"] and row["prodname"] and row["opter_id"] == counter.opter and row["opt_time"]
    bad_days = counter.call("2204", {"feedetail": [{**line, "feedetl_sn": serial("F"), "prd_days": "a week"}]})
    assert bad_days["infcode"] == -1 and bad_days["err_msg"].startswith("input.feedetail[0].prd_days:")
    query = ok(counter.call("5203", {"data": {"psn_no": person.psn_no, "setl_id": paid["setl_id"], "mdtrt_id": mdtrt_id}}))["setlinfo"]
    assert (query["fixmedins_poolarea"], query["hosp_lv"], query["dedc_hosp_lv"], query["lmtpric_hosp_lv"]) == ("370100", "3", "3", "3")
    assert query["flxempe_flag"] in ("0", "1") and query["nwb_flag"] in ("0", "1")
