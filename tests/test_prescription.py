"""E-prescription circulation through the gateway (7101–7105, 7201–7206) and the pharmacy's settlement naming it as rxno:
dispensed once (also when two counters race), refused when expired, revoked, at a pharmacy other than the chosen one, or
signed with a key that is not the hospital's; an online follow-up of a chronic patient renewed, settled, delivered and
written off."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, fresh_person, ok, register, registered_disease, serial, signed_in
from yibao.client import CounterClient
from yibao.core import clock, sm2
from yibao.core.crypto import sm3_hex
from yibao.prescription import service as rx
from yibao.prescription import transactions as spec

PHARMACY, OTHER_PHARMACY = "P37010000007", "P37010000008"


@pytest.fixture(scope="module")
def codes(db) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


@pytest.fixture(scope="module")
def hospital_key(db) -> str:  # type: ignore[no-untyped-def]
    """The hospital's SM2 private key; its public half registered with the platform (as `yibao prescription key-set`)."""
    private_pem, public_pem = sm2.generate_keypair()
    with db.unit_of_work() as session:
        rx.set_institution_key(session, HOSPITAL, public_pem)
    return private_pem


def pharmacy(http: Any, code: str = PHARMACY) -> CounterClient:
    client = CounterClient("http://testserver", code, secret_of(code), http=http)
    ok(client.sign_in())
    return client


def canonical_digest(hi_rxno: str, body: dict[str, Any]) -> str:
    """What the hospital computes on its side (docs/prescriptions.md): the 7101 input with every listed field as text
    ("" when absent), the signature fields left out, hi_rxno added; sorted keys, no spaces, UTF-8; its SM3."""
    def part(values: dict[str, Any], names: str) -> dict[str, str]:
        return {n: "" if values.get(n) is None else str(values[n]) for n in names.split() if n not in rx.SIGN_FIELDS}

    document = {"hi_rxno": hi_rxno, "data": part(body["data"], spec.RX_DATA),
                "rxdrugdetail": [part(x, spec.RX_DRUG) for x in body["rxdrugdetail"]],
                "mdtrtinfo": part(body["mdtrtinfo"], spec.RX_MDTRT), "diseinfo": [part(x, spec.RX_DISE) for x in body["diseinfo"]]}
    return sm3_hex(json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())


def prescription_body(person: Any, mdtrt_id: str, code: str, *, med_type: str = "11", dise: str = "", circ: str = "1",
                      valid_days: str = "3") -> dict[str, Any]:
    now = clock.fmt_datetime(clock.now())
    return {
        "data": {"hosp_rxno": serial("RX"), "init_rxno": "", "rx_type_code": "1", "prsc_time": now, "rx_drug_nums": 1,
                 "rx_way_codg": "1", "rx_way_name": "口服", "rx_freq_codg": "qd", "rx_freq_name": "每日一次", "valid_days": valid_days,
                 "rept_flag": "0", "rx_cotn_flag": "1" if med_type == "14" else "0", "rx_circ_flag": circ,
                 "rx_file": base64.b64encode("处方原件".encode()).decode(), "dr_sign_info": "", "fixmedins_sign_info": ""},
        "rxdrugdetail": [{"med_list_codg": code, "hosp_prep_flag": "0", "rx_item_type_code": "11", "medn_type_code": "1",
                          "bas_medn_flag": "1", "imp_drug_flag": "0", "drug_genname": "硝苯地平控释片", "drug_dosform": "片剂",
                          "drug_spec": "30mg*7片", "drug_pric": Decimal("10.00"), "drug_cnt": "2", "drug_cnt_unit": "盒",
                          "drug_sumamt": "20.00", "medc_way_codg": "1", "medc_way_dscr": "口服", "medc_starttime": now,
                          "medc_endtime": now, "medc_days": "14", "used_frqu_codg": "qd", "used_frqu_name": "每日一次", "dise_codg": dise}],
        "mdtrtinfo": {"mdtrt_id": mdtrt_id, "med_type": med_type, "ipt_op_no": serial("MZ"), "psn_no": person.psn_no,
                      "patn_name": person.psn_name, "age": 45, "gend": person.gend, "nwb_flag": "0", "suck_prd_flag": "0",
                      "psn_cert_type": "01", "certno": person.certno, "insutype": "310", "prsc_dept_name": "心内科",
                      "prsc_dept_code": "A03",
                      "prsc_dr_name": "王医生", "phar_name": "李药师", "phar_chk_time": now, "mdtrt_time": now, "dise_codg": dise,
                      "sp_dise_flag": "1" if dise else "0", "diag_code": "I10.x00", "diag_name": "高血压", "fstdiag": "0"},
        "diseinfo": [{"diag_type": "1", "maindiag_flag": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "高血压",
                      "diag_dept": "心内科", "dise_dor_no": "D001", "dise_dor_name": "王医生", "diag_time": now}],
    }


def write(counter: CounterClient, key: str, body: dict[str, Any]) -> str:
    """7101 pre-check, 7102 signature (the hospital's SM2, the platform's counter-signature), 7103 upload: the hi_rxno."""
    pre = ok(counter.call("7101", body))
    hi_rxno = pre["hi_rxno"]
    digest = canonical_digest(hi_rxno, body)
    assert pre["sign_digest"] == digest  # the hospital's own canonical form matches the platform's
    signed = ok(counter.call("7102", {"data": {"hi_rxno": hi_rxno, "fixmedins_code": HOSPITAL, "fixmedins_name": "医院",
                                                "phar_name": "李药师", "rx_chk_stas_codg": "1", "rx_chk_opnn": "合理",
                                                "rx_chk_time": clock.fmt_datetime(clock.now()),
                                                "fixmedins_sign_info": sm2.sign(key, digest.encode())}}))
    assert signed["sign_digest"] == digest and signed["hi_sign_info"]
    uploaded = ok(counter.call("7103", {"data": {"hi_rxno": hi_rxno}}))
    assert (uploaded["rx_stas_codg"], uploaded["rx_stas_name"]) == ("1", "有效")
    return hi_rxno


def new_prescription(counter: CounterClient, key: str, db: Any, code: str, **kwargs: Any) -> tuple[Any, str]:
    person = fresh_person(db, "310")
    mdtrt_id = register(counter, person, "310")
    return person, write(counter, key, prescription_body(person, mdtrt_id, code, **kwargs))


def epc_qrcd(db: Any, hi_rxno: str) -> str:
    from yibao.prescription.models import Prescription

    with db.unit_of_work(write=False) as session:
        row = session.get(Prescription, hi_rxno)
        assert row is not None
        return row.epc_qrcd


def take(shop: CounterClient, db: Any, hi_rxno: str) -> None:
    """The pharmacy scans the person's code (7201), downloads (7203) and its pharmacist reviews (7204)."""
    token = ok(shop.call("7201", {"data": {"epc_qrcd": epc_qrcd(db, hi_rxno), "app_chnl_id": "app", "app_chnl_user_id": "u",
                                           "dev_info": "pos", "ip_info": "10.0.0.9", "opter": "01", "opter_name": "店员",
                                           "optins": shop.fixmedins_code}}))["epc_token"]
    got = ok(shop.call("7203", {"data": {"epc_token": token, "insuplc_admdvs": "370100"}}))
    assert got["data"]["hi_rxno"] == hi_rxno and got["rxdrugdetail"][0]["drug_cnt"] == Decimal("2")
    ok(shop.call("7204", {"data": {"hi_rxno": hi_rxno, "phar_cert_type": "01", "phar_certno": "370102198001010011", "phar_name": "赵药师",
                                   "rx_chk_opnn": "合理", "rx_chk_stas_codg": "1", "rx_chk_time": clock.fmt_datetime(clock.now())}}))


def purchase(shop: CounterClient, person: Any, code: str, hi_rxno: str, infno: str = "2102") -> dict[str, Any]:
    return shop.call(infno, {"data": {"psn_no": person.psn_no, "insutype": "310", "mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno,
                                      "medfee_sumamt": Decimal("20.00"), "acct_used_flag": "0"},
                             "drugdetail": [{"feedetl_sn": serial("F"), "med_list_codg": code, "det_item_fee_sumamt": Decimal("20.00"),
                                             "cnt": Decimal("2"), "pric": Decimal("10.00"), "rxno": hi_rxno, "rx_circ_flag": "1"}]})


def status(counter: CounterClient, hi_rxno: str) -> dict[str, Any]:
    return ok(counter.call("7105", {"data": {"hi_rxno": hi_rxno}}))["data"]


def test_a_prescription_circulates_is_dispensed_once_and_written_off(counter, http, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person, hi_rxno = new_prescription(counter, hospital_key, db, codes["rx_capped"])
    shop = pharmacy(http)
    take(shop, db, hi_rxno)
    # a drug the prescription does not hold is refused by name
    other = purchase(shop, person, codes["otc_capped"], hi_rxno, "2101")
    assert other["infcode"] == -1 and other["err_msg"].startswith("input.drugdetail[0].med_list_codg:"), other["err_msg"]
    ok(purchase(shop, person, codes["rx_capped"], hi_rxno, "2101"))  # a pre-settlement leaves it dispensable
    paid = ok(purchase(shop, person, codes["rx_capped"], hi_rxno))["setlinfo"]
    seen = status(counter, hi_rxno)
    assert (seen["rx_used_stas_codg"], seen["setl_id"], seen["medins_code"]) == ("1", paid["setl_id"], PHARMACY)
    again = purchase(shop, person, codes["rx_capped"], hi_rxno)
    assert again["infcode"] == -1 and again["err_msg"].startswith("input.drugdetail[0].rxno:") and "already dispensed" in again["err_msg"]
    # revoking what was dispensed is refused
    late = counter.call("7104", {"data": {"hi_rxno": hi_rxno, "prsc_dr_name": "王医生", "undo_dr_cert_type": "01",
                                          "undo_dr_certno": "370102198001010011", "undo_rea": "开错",
                                          "undo_time": clock.fmt_datetime(clock.now())}})
    assert late["infcode"] == -1 and "dispensed" in late["err_msg"]
    # reversing the settlement gives the prescription back; it is dispensed again, then written off
    ok(shop.call("2103", {"data": {"setl_id": paid["setl_id"], "mdtrt_id": paid["mdtrt_id"], "psn_no": person.psn_no}}))
    assert status(counter, hi_rxno)["rx_used_stas_codg"] == "0"
    paid = ok(purchase(shop, person, codes["rx_capped"], hi_rxno))["setlinfo"]
    # picked up at the counter: no delivery to report
    assert shop.call("7205", {"data": {"hi_rxno": hi_rxno, "delv_stas_codg": "1", "delv_stas_name": "配送中"}})["infcode"] == -1
    done = ok(shop.call("7206", {"data": {"hi_rxno": hi_rxno, "phar_name": "赵药师", "phar_prac_cert_no": "YS001", "dspeer_name": "店员",
                                          "pro_name": "店员", "hi_feesetl_type": "1", "setl_id": paid["setl_id"],
                                          "sel_retn_time": clock.fmt_datetime(clock.now()), "download_ide_code": hi_rxno, "payMode": "2",
                                          "fund_pay_sumamt": paid["fund_pay_sumamt"], "psn_part_amt": paid["psn_part_amt"],
                                          "acct_pay": paid["acct_pay"], "psn_cash_pay": paid["psn_cash_pay"],
                                          "setl_time": paid["setl_time"]}}))
    assert done["rx_used_stas_codg"] == "2" and status(counter, hi_rxno)["rx_used_stas_name"] == "已核销"


def test_the_platform_counter_signs_with_its_own_key(counter, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310")
    body = prescription_body(person, register(counter, person, "310"), codes["rx_capped"])
    hi_rxno = ok(counter.call("7101", body))["hi_rxno"]
    digest = canonical_digest(hi_rxno, body)
    signed = ok(counter.call("7102", {"hi_rxno": hi_rxno, "rx_chk_stas_codg": "1", "phar_name": "李药师",  # flat, as some clients send it
                                      "fixmedins_sign_info": sm2.sign(hospital_key, digest.encode())}))
    with db.unit_of_work() as session:
        _, public_pem = rx.platform_key(session)
    assert sm2.verify(public_pem, digest.encode(), signed["hi_sign_info"])
    assert signed["sign_cert_sn"] == rx.key_serial(public_pem)


def test_a_signature_by_another_key_or_over_another_digest_is_refused(counter, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310")
    body = prescription_body(person, register(counter, person, "310"), codes["rx_capped"])
    hi_rxno = ok(counter.call("7101", body))["hi_rxno"]
    digest = canonical_digest(hi_rxno, body)
    stranger, _ = sm2.generate_keypair()
    other_digest = ("1" if digest[0] == "0" else "0") + digest[1:]  # another digest, whatever this one starts with
    for signature in (sm2.sign(stranger, digest.encode()), sm2.sign(hospital_key, other_digest.encode()), "bm90IGEgc2lnbmF0dXJl"):
        refused = counter.call("7103", {"data": {"hi_rxno": hi_rxno, "fixmedins_sign_info": signature}})
        assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.data.fixmedins_sign_info:"), refused["err_msg"]
    unsigned = counter.call("7103", {"data": {"hi_rxno": hi_rxno}})
    assert unsigned["infcode"] == -1 and "fixmedins_sign_info" in unsigned["err_msg"]
    # the right signature, sent with 7103 directly (a client that skips 7102), puts it into circulation
    ok(counter.call("7103", {"data": {"hi_rxno": hi_rxno, "fixmedins_sign_info": sm2.sign(hospital_key, digest.encode())}}))


def test_the_catalogue_and_insurance_are_checked_before_anything_is_kept(counter, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310")
    mdtrt_id = register(counter, person, "310")
    unknown = prescription_body(person, mdtrt_id, "XNOTACODE000")
    answer = counter.call("7101", unknown)
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.rxdrugdetail[0].med_list_codg:")
    not_insured = prescription_body(person, mdtrt_id, codes["rx_capped"])
    not_insured["mdtrtinfo"]["insutype"] = "510"
    assert counter.call("7101", not_insured)["err_msg"].startswith("input.mdtrtinfo.insutype:")
    # a chronic renewal needs the person's registration of the disease
    renewal = prescription_body(person, mdtrt_id, codes["rx_capped"], med_type="14", dise="M03900")
    assert counter.call("7101", renewal)["err_msg"].startswith("input.mdtrtinfo.dise_codg:")
    elsewhere = prescription_body(person, "370100000000000000000000000000", codes["rx_capped"])
    assert counter.call("7101", elsewhere)["err_msg"].startswith("input.mdtrtinfo.mdtrt_id:")


def test_a_revoked_prescription_is_refused_everywhere(counter, http, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person, hi_rxno = new_prescription(counter, hospital_key, db, codes["rx_capped"])
    shop = pharmacy(http)
    take(shop, db, hi_rxno)
    undone = ok(counter.call("7104", {"data": {"hi_rxno": hi_rxno, "prsc_dr_name": "王医生", "undo_dr_cert_type": "01",
                                               "undo_dr_certno": "370102198001010011", "undo_rea": "患者要求",
                                               "undo_time": clock.fmt_datetime(clock.now())}}))
    assert (undone["rx_stas_codg"], undone["rx_stas_name"]) == ("2", "已撤销")
    refused = purchase(shop, person, codes["rx_capped"], hi_rxno)
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.drugdetail[0].rxno:") and "revoked" in refused["err_msg"]
    scan = shop.call("7201", {"data": {"epc_qrcd": epc_qrcd(db, hi_rxno)}})
    assert scan["infcode"] == -1 and "revoked" in scan["err_msg"]


def test_an_expired_prescription_is_refused(counter, http, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person, hi_rxno = new_prescription(counter, hospital_key, db, codes["rx_capped"], valid_days="7")
    assert status(counter, hi_rxno)["valid_end_time"] <= clock.fmt_datetime(clock.now() + timedelta(days=3))  # capped at 3 days
    shop = pharmacy(http)
    take(shop, db, hi_rxno)
    with clock.pinned(clock.now() + timedelta(days=3, hours=1)):
        ok(shop.sign_in())
        refused = purchase(shop, person, codes["rx_capped"], hi_rxno)
        assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.drugdetail[0].rxno:") and "expired" in refused["err_msg"]
        ok(counter.sign_in())
        assert status(counter, hi_rxno)["rx_stas_name"] == "已失效"


def test_a_pharmacy_other_than_the_chosen_one_is_refused(counter, http, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person, hi_rxno = new_prescription(counter, hospital_key, db, codes["rx_capped"])
    with db.unit_of_work() as session:
        rx.choose(session, person.psn_no, hi_rxno, fixmedins_code=PHARMACY, mode="1", addr="")
    other = pharmacy(http, OTHER_PHARMACY)
    scan = other.call("7201", {"data": {"epc_qrcd": epc_qrcd(db, hi_rxno)}})
    assert scan["infcode"] == -1 and scan["err_msg"].startswith("input.data.epc_qrcd:") and "chose" in scan["err_msg"]
    by_card = other.call("7202", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "insuplc_admdvs": "370100"}})
    assert by_card["infcode"] == -1
    refused = purchase(other, person, codes["rx_capped"], hi_rxno)
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.drugdetail[0].rxno:") and "chose" in refused["err_msg"]
    # the chosen pharmacy finds it by the person's credential (7202: a one-time auth_rxno) and dispenses it
    shop = pharmacy(http)
    found = ok(shop.call("7202", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "insuplc_admdvs": "370100"}}))
    assert found["hi_rxno"] == hi_rxno
    ok(shop.call("7203", {"data": {"auth_rxno": found["auth_rxno"], "insuplc_admdvs": "370100"}}))
    assert shop.call("7203", {"data": {"auth_rxno": found["auth_rxno"]}})["infcode"] == -1  # an auth_rxno serves once
    ok(shop.call("7204", {"data": {"hi_rxno": hi_rxno, "phar_name": "赵药师", "rx_chk_stas_codg": "1", "rx_chk_opnn": "合理"}}))
    ok(purchase(shop, person, codes["rx_capped"], hi_rxno))


def test_two_counters_racing_dispense_it_once(http, db, codes, counter, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person, hi_rxno = new_prescription(counter, hospital_key, db, codes["rx_capped"])
    first, second = pharmacy(http), pharmacy(http)
    take(first, db, hi_rxno)
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def buy(shop: CounterClient) -> None:
        start.wait()
        answers.append(purchase(shop, person, codes["rx_capped"], hi_rxno))

    threads = [threading.Thread(target=buy, args=(shop,)) for shop in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["infcode"] for a in answers) == [-1, 0], answers
    assert "rxno" in next(a for a in answers if a["infcode"] == -1)["err_msg"]
    assert status(counter, hi_rxno)["rx_used_stas_codg"] == "1"


def test_an_online_follow_up_of_a_chronic_patient(counter, http, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    """Item 5: an online visit (med_type 14, the registered disease), the doctor reads the last three months' drugs (5205),
    renews the prescription (7101–7103, dispensed by the internet hospital itself: rx_circ_flag 0), the person asks for
    delivery, the hospital settles it on the visit with the disease's terms, delivers (7205) and writes it off (7206)."""
    person = fresh_person(db, "310")
    disease = registered_disease(counter, person, "310")
    mdtrt_id = register(counter, person, "310", med_type="14")
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "14",
                                           "begntime": clock.fmt_datetime(clock.now()), "dise_codg": disease},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "高血压",
                                           "diag_dept": "心内科", "dise_dor_no": "D001", "dise_dor_name": "王医生",
                                           "diag_time": clock.fmt_datetime(clock.now()), "vali_flag": "1"}]}))
    history = ok(counter.call("5205", {"data": {"psn_no": person.psn_no,
                                                "begntime": clock.fmt_datetime(clock.now() - timedelta(days=90))}}))["feedetail"]
    assert isinstance(history, list)
    hi_rxno = write(counter, hospital_key, prescription_body(person, mdtrt_id, codes["rx_capped"], med_type="14", dise=disease, circ="0"))
    # the person asks for delivery in the app (the hospital dispenses it itself: no pharmacy to choose)
    chosen = http.post(f"/api/v1/people/{person.psn_no}/prescriptions/{hi_rxno}/choice", headers=signed_in(http, person),
                       json={"delivery_mode": "2", "delv_addr": "济南市历下区泉城路1号"})
    assert chosen.status_code == 201, chosen.text
    assert (chosen.json()["pharmacy_code"], chosen.json()["pharmacy_fixed"], chosen.json()["renewal"]) == (HOSPITAL, True, True)
    line = {"feedetl_sn": serial("F"), "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "chrg_bchno": "RX1", "rxno": hi_rxno,
            "rx_circ_flag": "0", "fee_ocur_time": clock.fmt_datetime(clock.now()), "med_list_codg": codes["rx_capped"],
            "det_item_fee_sumamt": Decimal("20.00"), "cnt": Decimal("2"), "pric": Decimal("10.00"), "dise_codg": disease}
    ok(counter.call("2204", {"feedetail": [line]}))
    data = {"psn_no": person.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "med_type": "14",
            "medfee_sumamt": Decimal("20.00"), "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "RX1", "acct_used_flag": "0",
            "insutype": "310"}
    paid = ok(counter.call("2207", {"data": data}))["setlinfo"]
    assert paid["med_type"] == "14"
    assert status(counter, hi_rxno)["setl_id"] == paid["setl_id"]
    for code, name in (("1", "配送中"), ("2", "已签收")):
        ok(counter.call("7205", {"data": {"hi_rxno": hi_rxno, "delv_no": "SF1001", "delv_addr": "济南市历下区泉城路1号",
                                          "delv_entp_name": "顺丰速运", "delver_name": "张三", "delver_tel": "13800000000",
                                          "delv_stas_codg": code, "delv_stas_name": name,
                                          "delv_stas_time": clock.fmt_datetime(clock.now())}}))
    assert status(counter, hi_rxno)["delv_stas_name"] == "已签收"
    ok(counter.call("7206", {"data": {"hi_rxno": hi_rxno, "phar_name": "李药师", "setl_id": paid["setl_id"],
                                      "sel_retn_time": clock.fmt_datetime(clock.now())}}))
    # the doctor's next look at the last three months shows the renewed drug
    later = ok(counter.call("5205", {"data": {"psn_no": person.psn_no,
                                              "begntime": clock.fmt_datetime(clock.now() - timedelta(days=90))}}))["feedetail"]
    assert codes["rx_capped"] in {x.get("med_list_codg") for x in later}


def test_demo_hospitals_have_a_prescription_key_the_demo_his_can_sign_with(db) -> None:  # type: ignore[no-untyped-def]
    from yibao.prescription.models import PrescriptionKey

    with db.unit_of_work(write=False) as session:
        row = session.get(PrescriptionKey, "H37010000002")
        assert row is not None and row.demo_private_key is not None
        assert sm2.public_key_of(row.demo_private_key) == row.public_key
        assert session.get(PrescriptionKey, PHARMACY) is None  # pharmacies do not prescribe


# -- the people's REST API ------------------------------------------------------------------------------------------------------



def test_the_person_lists_sees_and_chooses_in_the_app_api(counter, http, db, codes, hospital_key) -> None:  # type: ignore[no-untyped-def]
    person, hi_rxno = new_prescription(counter, hospital_key, db, codes["rx_capped"])
    me = signed_in(http, person)
    base = f"/api/v1/people/{person.psn_no}/prescriptions"
    listed = http.get(base, headers=me).json()
    assert [(x["hi_rxno"], x["state"], x["may_choose"]) for x in listed] == [(hi_rxno, "待取药", True)] and listed[0]["epc_qrcd"]
    one = http.get(f"{base}/{hi_rxno}", headers=me).json()
    assert {PHARMACY, OTHER_PHARMACY} <= {p["code"] for p in one["pharmacies"]} and one["drugs"][0]["name"] == "硝苯地平控释片"
    # delivery needs an address; a hospital is not a pharmacy; refusals are Chinese
    no_address = http.post(f"{base}/{hi_rxno}/choice", headers=me, json={"delivery_mode": "2", "fixmedins_code": PHARMACY})
    assert no_address.status_code == 400 and "配送地址" in no_address.json()["detail"]
    hospital = http.post(f"{base}/{hi_rxno}/choice", headers=me, json={"delivery_mode": "1", "fixmedins_code": HOSPITAL})
    assert hospital.status_code == 400 and "定点药店" in hospital.json()["detail"]
    made = http.post(f"{base}/{hi_rxno}/choice", headers=me, json={"delivery_mode": "2", "fixmedins_code": PHARMACY,
                                                                    "delv_addr": "济南市市中区经七路100号"})
    assert made.status_code == 201, made.text
    assert (made.json()["pharmacy_code"], made.json()["delivery_mode_name"]) == (PHARMACY, "配送到家")
    # someone else's prescription is not shown
    stranger = fresh_person(db, "310", skip={person.psn_no})
    assert http.get(f"{base}/{hi_rxno}", headers=signed_in(http, stranger)).status_code in (403, 404)
    # once the pharmacy downloaded it, the choice stands; dispensed, it shows so and its code is gone
    shop = pharmacy(http)
    take(shop, db, hi_rxno)
    moved = http.post(f"{base}/{hi_rxno}/choice", headers=me, json={"delivery_mode": "1", "fixmedins_code": OTHER_PHARMACY})
    assert moved.status_code == 409 and "不能再更换" in moved.json()["detail"]
    paid = ok(purchase(shop, person, codes["rx_capped"], hi_rxno))["setlinfo"]
    ok(shop.call("7205", {"data": {"hi_rxno": hi_rxno, "delv_entp_name": "顺丰速运", "delv_stas_codg": "1", "delv_stas_name": "配送中"}}))
    after = http.get(base, headers=me).json()[0]
    assert (after["state"], after["epc_qrcd"], after["may_choose"], after["delv_stas_name"]) == ("已取药", "", False, "配送中")
    assert paid["setl_id"]
