"""A county hospital's day, walked the way its HIS does it (issue 10).

Two counter PCs sign in within one second, each with its own msgid counter that restarts (so both send the same
msgid with different bodies); 2001 before every 2201; the registration fee is settled alone right after 2201 and the
prescriptions later on the same visit; a chronic-disease visit (med_type 14) after its registration (2503); 5301 after
1101; the second settlement of a visit is reversed and the first stands. The same day again through Guangdong's dialect,
by a client that speaks it as its HIS does. Then `yibao ledger check` from the command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

from conftest import secret_of
from flows import catalogue_codes, fee, ok, person_with, registered_disease
from test_dialects import GuangdongHis, fee_line
from yibao.client import CounterClient
from yibao.core import clock

COUNTY_HOSPITAL = "H37010000003"  # level 2 in the demo region 370100
GUANGDONG_HOSPITAL = "H44030000002"


class CounterPC:
    """One counter PC of the HIS: its operator, its MAC, and a msgid counter that starts at 0001 with the program."""

    def __init__(self, http: Any, opter: str, mac: str) -> None:
        self.client = CounterClient("http://testserver", COUNTY_HOSPITAL, secret_of(COUNTY_HOSPITAL), http=http, opter=opter)
        self.mac, self.counter = mac, 0

    def msgid(self, stamp: str | None = None) -> str:
        self.counter += 1
        return f"{COUNTY_HOSPITAL}{stamp or f'{clock.now():%Y%m%d%H%M%S}'}{self.counter:04d}"

    def call(self, infno: str, input_: dict[str, Any], stamp: str | None = None) -> dict[str, Any]:
        return self.client.call(infno, input_, msgid=self.msgid(stamp))

    def sign_in(self, stamp: str) -> dict[str, Any]:
        answer = self.call("9001", {"signIn": {"opter_no": self.client.opter, "mac": self.mac, "ip": "10.0.0.8"}}, stamp)
        if answer.get("infcode") == 0:
            self.client.sign_no = answer["output"]["signinoutb"]["sign_no"]
        return answer


def check_treatment(call: Any, psn_no: str, insutype: str, med_type: str, dise_codg: str = "") -> list[dict[str, Any]]:
    return ok(call("2001", {"data": {"psn_no": psn_no, "insutype": insutype, "fixmedins_code": COUNTY_HOSPITAL, "med_type": med_type,
                                     "begntime": clock.fmt_datetime(clock.now()), "dise_codg": dise_codg}}))["trtinfo"]


def registration(psn_no: str, certno: str, number: str, med_type: str = "11") -> dict[str, Any]:
    return {"data": {"psn_no": psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()), "mdtrt_cert_type": "02",
                     "mdtrt_cert_no": certno, "ipt_otp_no": number, "atddr_no": "D37010000005", "dr_name": "医生", "dept_code": "A03",
                     "dept_name": "内科", "caty": "A03", "med_type": med_type}}


def settlement(psn_no: str, certno: str, mdtrt_id: str, total: str, batch: str, med_type: str = "11",
               dise_codg: str = "") -> dict[str, Any]:
    return {"data": {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "med_type": med_type,
                     "medfee_sumamt": Decimal(total),
                     "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": batch, "acct_used_flag": "0", "insutype": "310",
                     "dise_codg": dise_codg}}


def test_a_county_hospital_day(http, db, settings) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    front, back = CounterPC(http, "0001", "00-16-3E-00-00-01"), CounterPC(http, "0002", "00-16-3E-00-00-02")
    # both PCs start their program in the same second: the same msgid, two different sign-ins, both served
    stamp = f"{clock.now():%Y%m%d%H%M%S}"
    first, second = front.sign_in(stamp), back.sign_in(stamp)
    assert first["infcode"] == 0 and second["infcode"] == 0, (first["err_msg"], second["err_msg"])
    assert front.client.sign_no != back.client.sign_no
    # a genuine retry of the first (same msgid, same body) is answered with its first answer
    retry = front.client.send({**front.client.envelope("9001", {"signIn": {"opter_no": "0001", "mac": front.mac, "ip": "10.0.0.8"}},
                                                        msgid=f"{COUNTY_HOSPITAL}{stamp}0001")})
    assert retry["output"]["signinoutb"]["sign_no"] == front.client.sign_no

    # -- an employee's ordinary visit at the front counter
    person = person_with(db, "310", retired=False)
    found = ok(front.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "psn_cert_type": "01"}}))
    psn_no = found["baseinfo"]["psn_no"]
    assert ok(front.call("5301", {"data": {"psn_no": psn_no}}))["feedetail"] is not None  # 5301 after 1101: any registrations
    assert check_treatment(front.call, psn_no, "310", "11") == []  # 2001 before 2201
    mdtrt_id = ok(front.call("2201", registration(psn_no, person.certno, f"MZ{stamp}01")))["data"]["mdtrt_id"]
    # the registration fee, settled at once
    ok(front.call("2204", {"feedetail": [fee(mdtrt_id, psn_no, codes["jia"], "12.00", batch="GH")]}))
    ok(front.call("2206", settlement(psn_no, person.certno, mdtrt_id, "12.00", "GH")))
    registration_fee = ok(front.call("2207", settlement(psn_no, person.certno, mdtrt_id, "12.00", "GH")))["setlinfo"]
    # the doctor prescribes; the prescriptions are settled later, on the same visit, at the other counter
    ok(back.call("2204", {"feedetail": [fee(mdtrt_id, psn_no, codes["jia"], "80.00", batch="CF"),
                                        fee(mdtrt_id, psn_no, codes["yi"], "40.00", batch="CF")]}))
    ok(back.call("2206", settlement(psn_no, person.certno, mdtrt_id, "120.00", "CF")))
    prescriptions = ok(back.call("2207", settlement(psn_no, person.certno, mdtrt_id, "120.00", "CF")))["setlinfo"]
    assert prescriptions["setl_id"] != registration_fee["setl_id"] and prescriptions["mdtrt_id"] == mdtrt_id
    assert Decimal(str(prescriptions["medfee_sumamt"])) == Decimal("120.00")
    # the prescriptions were charged wrongly: the second settlement is reversed, the registration fee stands
    reversed_ = ok(back.call("2208", {"data": {"psn_no": psn_no, "mdtrt_id": mdtrt_id, "setl_id": prescriptions["setl_id"]}}))["setlinfo"]
    assert Decimal(str(reversed_["medfee_sumamt"])) == -Decimal("120.00")
    standing = ok(front.call("5203", {"data": {"psn_no": psn_no, "setl_id": registration_fee["setl_id"], "mdtrt_id": mdtrt_id}}))
    assert standing["setlinfo"]["setl_id"] == registration_fee["setl_id"] and standing["setlinfo"]["refd_setl_flag"] != "1"

    # -- a chronic-disease visit (门诊慢特病) after its registration
    patient = person_with(db, "310", retired=True)
    disease = registered_disease(back.client, patient, "310")
    listed = ok(back.call("5301", {"data": {"psn_no": patient.psn_no}}))["feedetail"]
    assert disease in {row["opsp_dise_code"] for row in listed}
    assert check_treatment(back.call, patient.psn_no, "310", "14", disease) == []
    chronic_visit = ok(back.call("2201", registration(patient.psn_no, patient.certno, f"MZ{stamp}02", "14")))["data"]["mdtrt_id"]
    # 2203: the visit names the registered disease (病种编码)
    ok(back.call("2203", {"mdtrtinfo": {"mdtrt_id": chronic_visit, "psn_no": patient.psn_no, "med_type": "14",
                                        "begntime": clock.fmt_datetime(clock.now()), "dise_codg": disease},
                          "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "原发性高血压",
                                        "diag_dept": "内科", "dise_dor_no": "D37010000005", "dise_dor_name": "医生",
                                        "diag_time": clock.fmt_datetime(clock.now()), "vali_flag": "1"}]}))
    ok(back.call("2204", {"feedetail": [fee(chronic_visit, patient.psn_no, codes["jia"], "300.00", batch="MT")]}))
    chronic = ok(back.call("2207", settlement(patient.psn_no, patient.certno, chronic_visit, "300.00", "MT", "14", disease)))["setlinfo"]
    assert Decimal(str(chronic["act_pay_dedc"])) == 0 and Decimal(str(chronic["hifp_pay"])) > 0  # the disease's own terms

    # -- the same day at a Guangdong hospital, through its dialect
    his = GuangdongHis(http, GUANGDONG_HOSPITAL, secret_of(GUANGDONG_HOSPITAL), guangzhou=False)
    his.sign_in()
    guest = person_with(db, "310", region="440300", retired=False)
    gd_psn = his.psn_no(guest.certno)
    his.ok(his.call("5301", {"data": {"psn_no": gd_psn}}))
    assert his.ok(his.call("2001", {"data": {"psn_no": gd_psn, "insutype": "310", "fixmedins_code": GUANGDONG_HOSPITAL, "med_type": "11",
                                             "begntime": clock.fmt_datetime(clock.now())}}))["trtinfo"] == []
    reg = {"psn_no": gd_psn, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()), "mdtrt_cert_type": "02",
           "mdtrt_cert_no": guest.certno, "ipt_otp_no": f"GD{stamp}", "atddr_no": "D44030000003", "dr_name": "医生", "dept_code": "A03",
           "dept_name": "内科", "caty": "A03", "med_type": "11"}
    gd_visit = his.ok(his.call("2201", his.wrap("2201", reg)))["data"]["mdtrt_id"]
    settle = {"psn_no": gd_psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": guest.certno, "med_type": "11", "psn_setlway": "01",
              "mdtrt_id": gd_visit, "acct_used_flag": "0", "insutype": "310", "mdtrt_mode": "0", "hcard_basinfo": "", "hcard_chkinfo": ""}
    his.ok(his.call("2204", {"feedetail": [fee_line(his, gd_visit, gd_psn, codes["jia"], "10.00", "GH")]}))
    gd_first = his.settle("2207", {**settle, "medfee_sumamt": "10.00", "chrg_bchno": "GH"})["setlinfo"]
    his.ok(his.call("2204", {"feedetail": [fee_line(his, gd_visit, gd_psn, codes["yi"], "55.50", "CF")]}))
    his.settle("2206", {**settle, "medfee_sumamt": "55.50", "chrg_bchno": "CF"})
    gd_second = his.settle("2207", {**settle, "medfee_sumamt": "55.50", "chrg_bchno": "CF"})["setlinfo"]
    assert gd_second["setl_id"] != gd_first["setl_id"]
    undone = his.settle("2208", {"setl_id": gd_second["setl_id"], "mdtrt_id": gd_visit, "psn_no": gd_psn})["setlinfo"]
    assert his.part(undone) == -his.part(gd_second)
    still = his.ok(his.call("5203", {"data": {"psn_no": gd_psn, "setl_id": gd_first["setl_id"], "mdtrt_id": gd_visit}}))
    assert still["setlinfo"]["setl_id"] == gd_first["setl_id"]

    # -- the day closes with the ledger check, as an operator runs it
    result = subprocess.run([sys.executable, "-m", "yibao", "ledger", "check"],
                            env={**os.environ, "YIBAO_DATABASE_URL": settings.database_url},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ledger check passed" in result.stdout, result.stdout + result.stderr
