#!/usr/bin/env python3
"""What a hospital counter (HIS) does, message by message, against yibao's national gateway.

Standalone on purpose: only httpx and the standard library, so an HIS developer can read it
top to bottom and port it. It signs every request with HMAC-SM3 (OpenSSL 3 through hashlib),
walks a whole outpatient visit (9001 → 1101 → 2201 → 2203 → 2204 → 2206 → 2207) and a whole
inpatient stay (2401 → 2301 → 2402 → 2303 → 2304), and prints every request and answer.

    python examples/his_counter.py --secret "$(yibao keys show H37010000001 | awk '{print $4}')"
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import secrets
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx

BEIJING = timezone(timedelta(hours=8))
_seq = itertools.count(1)


class Counter:
    def __init__(self, url: str, code: str, secret: str, admvs: str, quiet: bool = False) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.code, self.secret, self.admvs, self.quiet = code, secret, admvs, quiet
        self.sign_no = ""

    def call(self, infno: str, input_: dict[str, Any], insuplc_admdvs: str = "", show: bool = True) -> dict[str, Any]:
        now = datetime.now(BEIJING)
        envelope = {
            "infno": infno, "msgid": f"{self.code}{now:%Y%m%d%H%M%S}{next(_seq) % 10000:04d}", "mdtrtarea_admvs": self.admvs,
            "insuplc_admdvs": insuplc_admdvs, "recer_sys_code": "YBXT", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "",
            "infver": "V1.0", "opter_type": "1", "opter": "0001", "opter_name": "收费员", "inf_time": f"{now:%Y-%m-%d %H:%M:%S}",
            "fixmedins_code": self.code, "fixmedins_name": "", "sign_no": self.sign_no, "input": input_,
        }
        # Amounts are Decimal, sent as exact decimal text (the gateway takes numbers or strings); never binary floats.
        body = json.dumps(envelope, ensure_ascii=False, default=str).encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        signature = hmac.new(self.secret.encode(), f"{timestamp}\n{nonce}\n".encode() + body, "sm3").hexdigest()
        headers = {"content-type": "application/json; charset=utf-8", "x-yb-access-key": self.code, "x-yb-timestamp": timestamp,
                   "x-yb-nonce": nonce, "x-yb-signature": signature}
        reply = self.http.post("/fsi/api/rsfComIfsService/callService", content=body, headers=headers)
        answer = json.loads(reply.text, parse_float=Decimal)
        if not self.quiet:
            print(f"\n── {infno} → {json.dumps(input_, ensure_ascii=False, default=str)}")
            print(f"   ← {reply.text if show else reply.text[:300] + ' …'}")
        if answer["infcode"] != 0:
            raise SystemExit(f"{infno} refused: {answer['err_msg']}")
        return answer["output"]


def now_text() -> str:
    return f"{datetime.now(BEIJING):%Y-%m-%d %H:%M:%S}"


def fee_line(mdtrt_id: str, psn_no: str, sn: str, code: str, price: Decimal, cnt: int = 1) -> dict[str, Any]:
    return {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "1", "rxno": "RX" + sn, "rx_circ_flag": "0",
            "fee_ocur_time": now_text(), "med_list_codg": code, "medins_list_codg": code, "det_item_fee_sumamt": price * cnt,
            "cnt": cnt, "pric": price, "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D37010000001",
            "bilg_dr_name": "张医生", "hosp_appr_flag": "0"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--fixmedins-code", default="H37010000001")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--admvs", default="370100")
    parser.add_argument("--certno", default="370112198212308842", help="resident ID number of the patient (the demo's 金梅艳 by default)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    counter = Counter(args.url, args.fixmedins_code, args.secret, args.admvs, args.quiet)

    print("# sign in")
    counter.sign_no = counter.call("9001", {"signIn": {"opter_no": "0001", "mac": "00-16-3E-00-00-01", "ip": "10.0.0.8"}})["signinoutb"]["sign_no"]

    print("\n# who is the patient")
    person = counter.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": args.certno, "psn_cert_type": "01"}})
    psn_no = person["baseinfo"]["psn_no"]
    basic = next(i for i in person["insuinfo"] if i["insutype"] in ("310", "390"))
    insutype, region = basic["insutype"], basic["insuplc_admdvs"]
    cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": args.certno}

    print("\n# pick catalogue items (1312): a 甲 service item and two 乙 drugs")
    services = counter.call("1312", {"data": {"list_type": "201", "page_num": 1, "page_size": 50}}, show=False)["data"]
    drugs = counter.call("1312", {"data": {"list_type": "101", "page_num": 1, "page_size": 100}}, show=False)["data"]
    exam = next(s for s in services if s["chrgitm_lv"] == "01" and not s["lmt_hosp_lv"] and s["pric_uplmt_amt"])
    yi = [d for d in drugs if d["chrgitm_lv"] == "02" and not d["lmt_gend"] and d["lmt_age_min"] is None and d["lmt_age_max"] is None
          and not d["lmt_hosp_lv"]][:2]

    print("\n# outpatient visit")
    reg = counter.call("2201", {"data": {"psn_no": psn_no, "insutype": insutype, "begntime": now_text(), **cert,
                                         "ipt_otp_no": f"MZ{int(time.time())}", "atddr_no": "D37010000001", "dr_name": "张医生",
                                         "dept_code": "A03", "dept_name": "内科", "caty": "A03"}}, region)
    mdtrt_id = reg["data"]["mdtrt_id"]
    counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11", "begntime": now_text()},
                          "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染",
                                        "diag_dept": "内科", "dise_dor_no": "D37010000001", "dise_dor_name": "张医生",
                                        "diag_time": now_text(), "vali_flag": "1"}]}, region)
    lines = [fee_line(mdtrt_id, psn_no, "1", exam["med_list_codg"], exam["pric_uplmt_amt"]),
             fee_line(mdtrt_id, psn_no, "2", yi[0]["med_list_codg"], yi[0]["pric_uplmt_amt"], 2),
             fee_line(mdtrt_id, psn_no, "3", yi[1]["med_list_codg"], yi[1]["pric_uplmt_amt"])]
    counter.call("2204", {"feedetail": lines}, region)
    total = sum(line["det_item_fee_sumamt"] for line in lines)
    settle = {"psn_no": psn_no, **cert, "med_type": "11", "medfee_sumamt": total, "psn_setlway": "01", "mdtrt_id": mdtrt_id,
              "chrg_bchno": "1", "acct_used_flag": "1", "insutype": insutype}
    counter.call("2206", {"data": settle}, region)
    counter.call("2207", {"data": settle}, region)

    print("\n# inpatient stay")
    adm = counter.call("2401", {"mdtrtinfo": {"psn_no": psn_no, "insutype": insutype, **cert, "med_type": "21", "ipt_no": f"ZY{int(time.time())}",
                                              "begntime": now_text(), "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
                                              "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900", "diag_name": "急性阑尾炎"}]}, region)
    ipt_id = adm["result"]["mdtrt_id"]
    ipt_lines = [fee_line(ipt_id, psn_no, "1", exam["med_list_codg"], exam["pric_uplmt_amt"], 3),
                 fee_line(ipt_id, psn_no, "2", yi[0]["med_list_codg"], yi[0]["pric_uplmt_amt"], 10)]
    counter.call("2301", {"feedetail": ipt_lines}, region)
    counter.call("2402", {"dscginfo": {"mdtrt_id": ipt_id, "psn_no": psn_no, "insutype": insutype, "endtime": now_text(),
                                       "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "dscg_way": "1"}}, region)
    ipt_total = sum(line["det_item_fee_sumamt"] for line in ipt_lines)
    ipt_settle = {"psn_no": psn_no, **cert, "medfee_sumamt": ipt_total, "psn_setlway": "01", "mdtrt_id": ipt_id, "insutype": insutype,
                  "acct_used_flag": "1", "mid_setl_flag": "0"}
    counter.call("2303", {"data": ipt_settle}, region)
    counter.call("2304", {"data": ipt_settle}, region)
    print("\n# done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
