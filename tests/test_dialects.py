"""A whole outpatient and inpatient day through each dialect, by clients that speak it as their HIS does.

The Guangdong clients are written from the research notes on public Guangdong HIS code (docs/dialects.md): they
sign with TIF headers (Unix seconds, lower-case hex, short nonces), post to /ebus/{account}/{env}/hsa/hgs/{infno},
send every amount as a string, send ``recer_admdvs`` and a blank ``mdtrtarea_admvs``, and read the answers with the
keys their models declare. The provincial one (IB-FS, Zebone) uses the national node names; the Guangzhou one
(IB-GZ) its own: ``data`` for 9001, ``mdtrtinfo`` for 2201/2206/2207/2208/2304/2305/2402, ``feeinfo`` for 2302, flat
2404/2405, ``ipt_otp_no``/``main_cond_desc``/``frqu_dscr``/``dscg_dept_code``/``cmplct_flag``, and it reads 1101's
output as a list, the sign-in under ``output.result`` and ``setlinfo.psn_part_am``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from conftest import secret_of
from flows import catalogue_codes, person_with
from yibao.client import CounterClient
from yibao.core import clock
from yibao.gateway import keys

BASE = "/ebus/gdyb_inf/poc/hsa/hgs/"
_sequence = itertools.count(1)


class GuangdongHis:
    """An HIS built for Guangdong's platform. ``guangzhou``: the Guangzhou adapter's node names and readings."""

    def __init__(self, http: Any, fixmedins_code: str, secret: str, *, guangzhou: bool) -> None:
        self.http, self.code, self.secret, self.guangzhou = http, fixmedins_code, secret, guangzhou
        self.sign_no = ""
        self.sent: list[dict[str, Any]] = []

    # -- the wire ----------------------------------------------------------------------------------
    def envelope(self, infno: str, input_: dict[str, Any]) -> dict[str, Any]:
        return {"infno": infno, "msgid": f"{self.code}{clock.now():%Y%m%d%H%M%S}{next(_sequence) % 10000:04d}", "mdtrtarea_admvs": "",
                "insuplc_admdvs": "440300", "recer_sys_code": "HIS", "recer_admdvs": "440300", "dev_no": "", "dev_safe_info": "",
                "cainfo": secrets.token_hex(32).upper(), "signtype": "SM3", "infver": "1.0.0",
                "opter_type": "1", "opter": "01", "opter_name": "0001", "inf_time": clock.fmt_datetime(clock.now()),
                "fixmedins_code": self.code, "fixmedins_name": "深圳市第2人民医院", "sign_no": self.sign_no, "input": input_}

    def headers(self) -> dict[str, str]:
        ts = str(int(time.time()))  # TIF: Unix seconds
        # IB sends a GUID without dashes, Zebone (Zhongshan) six random characters
        nonce = uuid.uuid4().hex if self.guangzhou else secrets.token_urlsafe(6)[:6]
        signature = hashlib.sha256(f"{ts}{self.secret}{nonce}{ts}".encode()).hexdigest()
        return {"x-tif-paasid": self.code, "x-tif-timestamp": ts, "x-tif-nonce": nonce, "x-tif-signature": signature,
                "content-type": "application/json" if self.guangzhou else "text/plain"}

    def call(self, infno: str, input_: dict[str, Any]) -> dict[str, Any]:
        document = self.envelope(infno, input_)
        self.sent.append(document)
        reply = self.http.post(BASE + infno, content=json.dumps(document, ensure_ascii=False).encode(), headers=self.headers())
        assert reply.status_code == 200, reply.text
        return json.loads(reply.text, parse_float=Decimal)

    def ok(self, answer: dict[str, Any]) -> Any:
        # `e.infcode != "0"` (IB) / `"0".equals(getString(infcode))` (Zebone): the answer's infcode is the string "0"
        assert answer["infcode"] == "0", answer
        assert answer["err_msg"] == "" and answer["warn_msg"] is not None
        return answer["output"]

    def node(self, infno: str) -> str:
        if not self.guangzhou:
            return "data"
        return {"2201": "mdtrtinfo", "2206": "mdtrtinfo", "2207": "mdtrtinfo", "2208": "mdtrtinfo", "2302": "feeinfo",
                "2304": "mdtrtinfo", "2305": "mdtrtinfo"}.get(infno, "data")

    def wrap(self, infno: str, data: dict[str, Any]) -> dict[str, Any]:
        if self.guangzhou and infno in ("2404", "2405"):
            return data  # flat: the fields straight in input
        return {self.node(infno): data}

    # -- what the counter does ----------------------------------------------------------------------
    def sign_in(self) -> None:
        if self.guangzhou:
            now = f"{clock.now():%Y%m%d%H%M%S}"
            out = self.ok(self.call("9001", {"data": {"mac": "11-11-11-11-11", "ip": "11.11.11.11", "userid": self.code, "opter_no": "0001",
                                                      "password": hashlib.md5((now + "secret").encode()).hexdigest(), "currenttime": now}}))
            self.sign_no = out["result"]["sign_no"]
        else:
            out = self.ok(self.call("9001", {"signIn": {"opter_no": "0001", "mac": "00-16-3E-00-00-02", "ip": "10.0.0.9"}}))
            self.sign_no = out["signinoutb"]["sign_no"]
        clock.parse_datetime(out["signinoutb"]["sign_time"], "sign_time")

    def psn_no(self, certno: str) -> str:
        out = self.ok(self.call("1101",
                                {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "psn_cert_type": "01", "begntime": ""}}))
        person = out[0] if self.guangzhou else out  # List<Output> in Guangzhou, an object on the provincial platform
        for row in person["insuinfo"]:
            Decimal(str(row["balc"]))
        return person["baseinfo"]["psn_no"]

    def part(self, setlinfo: dict[str, Any]) -> Decimal:
        return Decimal(str(setlinfo["psn_part_am" if self.guangzhou else "psn_part_amt"]))

    def settle(self, infno: str, data: dict[str, Any]) -> dict[str, Any]:
        out = self.ok(self.call(infno, self.wrap(infno, data)))
        for _row in out["setldetail"]:
            pass
        if self.guangzhou:
            assert out["voladetail"] == []
        return out


class NationalHis:
    """The national interface as yibao's own client speaks it (HMAC-SM3 headers, the single national path)."""

    guangzhou = False

    def __init__(self, counter: CounterClient) -> None:
        self.counter = counter

    def call(self, infno: str, input_: dict[str, Any]) -> dict[str, Any]:
        return self.counter.call(infno, input_)

    def ok(self, answer: dict[str, Any]) -> Any:
        assert answer["infcode"] == 0, answer
        return answer["output"]

    def wrap(self, infno: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"data": data}

    def sign_in(self) -> None:
        assert self.counter.sign_in()["infcode"] == 0

    def psn_no(self, certno: str) -> str:
        return self.ok(self.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}}))["baseinfo"]["psn_no"]

    def part(self, setlinfo: dict[str, Any]) -> Decimal:
        return Decimal(str(setlinfo["psn_part_amt"]))

    def settle(self, infno: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.ok(self.call(infno, self.wrap(infno, data)))


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def client(http: Any, db: Any, dialect: str) -> GuangdongHis | NationalHis:
    if dialect == "national":  # the national interface, from a Guangdong hospital whose HIS speaks it
        code = "H44030000001"
        with db.unit_of_work() as session:
            keys.set_dialect(session, code, "national")
        return NationalHis(CounterClient("http://testserver", code, secret_of(code), http=http, mdtrtarea_admvs="440300"))
    if dialect == "guangdong":  # a key bound to no dialect: the path selects Guangdong's
        return GuangdongHis(http, "H44030000002", secret_of("H44030000002"), guangzhou=False)
    code = "H44030000003"
    with db.unit_of_work() as session:
        keys.set_dialect(session, code, "guangzhou")
    return GuangdongHis(http, code, secret_of(code), guangzhou=True)


def fee_line(his: Any, mdtrt_id: str, psn_no: str, code: str, amount: str, batch: str) -> dict[str, Any]:
    line = {"feedetl_sn": f"{uuid.uuid4().hex[:20]}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": batch, "rxno": "",
            "rx_circ_flag": "0", "fee_ocur_time": clock.fmt_datetime(clock.now()), "med_list_codg": code,
            "medins_list_codg": "H-" + code[:10], "det_item_fee_sumamt": amount, "cnt": "1", "pric": amount, "bilg_dept_codg": "A03",
            "bilg_dept_name": "内科", "bilg_dr_codg": "D44030000003", "bilg_dr_name": "医生", "hosp_appr_flag": "0", "sin_dos_dscr": "1片"}
    if isinstance(his, GuangdongHis):
        line.update(medins_list_name="院内项目", unchk_flag="0", unchk_memo="")
        line["frqu_dscr" if his.guangzhou else "used_frqu_dscr"] = "tid"
    else:
        line["det_item_fee_sumamt"] = line["pric"] = Decimal(amount)
        line["cnt"] = Decimal(1)
    return line


@pytest.mark.parametrize("dialect", ["national", "guangdong", "guangzhou"])
def test_an_outpatient_and_inpatient_day(http, db, codes, dialect: str) -> None:  # type: ignore[no-untyped-def]
    his = client(http, db, dialect)
    person = person_with(db, "310", region="440300", skip={p for p in USED})
    USED.add(person.psn_no)
    amount = str if isinstance(his, GuangdongHis) else Decimal
    his.sign_in()
    psn_no = his.psn_no(person.certno)
    assert psn_no == person.psn_no
    cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno}

    # -- outpatient: register, diagnoses, fee lines, pre-settle, settle, look it up, reverse
    registration = {"psn_no": psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()), **cert,
                    "ipt_otp_no": f"MZ{uuid.uuid4().hex[:10]}",
                    "atddr_no": "D44030000003", "dr_name": "医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03", "med_type": "11"}
    registered = his.ok(his.call("2201", his.wrap("2201", registration)))["data"]
    mdtrt_id = registered["mdtrt_id"]
    if his.guangzhou:
        assert registered["vola_type"] == "" and registered["vola_dscr"] == ""
    his.ok(his.call("2203",
                    {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11", "begntime": clock.fmt_datetime(clock.now())},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染",
                                           "diag_dept": "内科", "dise_dor_no": "D44030000003", "dise_dor_name": "医生",
                                           "diag_time": clock.fmt_datetime(clock.now()), "vali_flag": "1"}]}))
    uploaded = his.ok(his.call("2204", {"feedetail": [fee_line(his, mdtrt_id, psn_no, codes["jia"], "30.00", "B1"),
                                                      fee_line(his, mdtrt_id, psn_no, codes["yi"], "20.00", "B1")]}))
    assert len(uploaded["result"]) == 2
    if isinstance(his, GuangdongHis):
        assert uploaded["voladetail"] == []
    settle = {"psn_no": psn_no, **cert, "med_type": "11", "medfee_sumamt": amount("50.00"), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
              "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    if isinstance(his, GuangdongHis):
        settle.update(mdtrt_mode="0", order_no=f"O{mdtrt_id}", hcard_basinfo="", hcard_chkinfo="")
    pre = his.settle("2206", settle)["setlinfo"]
    done = his.settle("2207", settle)["setlinfo"]
    assert done["medfee_sumamt"] == pre["medfee_sumamt"] and Decimal(str(done["medfee_sumamt"])) == Decimal("50.00")
    assert his.part(done) == his.part(pre) and his.part(done) == Decimal(str(done["psn_cash_pay"])) + Decimal(str(done["acct_pay"]))
    found = his.ok(his.call("5203", {"data": {"psn_no": psn_no, "setl_id": done["setl_id"], "mdtrt_id": mdtrt_id}}))
    assert found["setlinfo"]["setl_id"] == done["setl_id"] and his.part(found["setlinfo"]) == his.part(done)
    undone = his.settle("2208", {"setl_id": done["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no})["setlinfo"]
    assert his.part(undone) == -his.part(done)

    # -- inpatient: admit, fee lines (one cancelled), discharge, undo it, discharge, pre-settle, settle, look up, reverse
    admission = {"psn_no": psn_no, "insutype": "310", **cert, "med_type": "21", "begntime": clock.fmt_datetime(clock.now()),
                 "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12", "dise_codg": "K35.900", "dise_name": "急性阑尾炎",
                 "atddr_no": "D44030000003", "coner_name": "家属", "tel": "13800000000"}
    number = f"ZY{uuid.uuid4().hex[:10]}"
    if isinstance(his, GuangdongHis):
        admission.update(ipt_otp_no=number, main_cond_desc="右下腹痛", clnc_flag="0", er_flag="0", repeat_ipt_flag="0", ttp_resp="0",
                         merg_setl_flag="0", advpay="0", hcard_basinfo="", hcard_chkinfo="")
    else:
        admission.update(ipt_no=number, main_cond_dscr="右下腹痛")
    admitted = his.ok(his.call("2401", {"mdtrtinfo": admission, "agnterinfo": {"agnter_name": ""},
                                        "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                      "diag_name": "急性阑尾炎"}]}))
    stay = admitted["result"]["mdtrt_id"]
    lines = [fee_line(his, stay, psn_no, codes["jia"], "600.00", "Z1"), fee_line(his, stay, psn_no, codes["yi"], "150.00", "Z1")]
    assert len(his.ok(his.call("2301", {"feedetail": lines}))["result"]) == 2
    his.ok(his.call("2302", his.wrap("2302", {"mdtrt_id": stay, "psn_no": psn_no, "feedetl_sn": lines[1]["feedetl_sn"]})))
    discharge = {"mdtrt_id": stay, "psn_no": psn_no, "endtime": clock.fmt_datetime(clock.now()), "dscg_way": "1", "dscg_dept_name": "外科",
                 "dise_codg": "K35.900", "dise_name": "急性阑尾炎"}
    if isinstance(his, GuangdongHis):
        discharge.update(dscg_dept_code="A04", expi_gestation_nub_of_m="0")
        discharge["cmplct_flag" if his.guangzhou else "cop_flag"] = "0"
    else:
        discharge["dscg_dept_codg"] = "A04"
    node = "mdtrtinfo" if his.guangzhou else "dscginfo"
    his.ok(his.call("2402", {node: discharge, "diseinfo": []}))
    his.ok(his.call("2405", his.wrap("2405", {"mdtrt_id": stay, "psn_no": psn_no})))
    his.ok(his.call("2402", {node: {**discharge, "endtime": clock.fmt_datetime(clock.now())}, "diseinfo": []}))
    inpatient = {**settle, "mdtrt_id": stay, "med_type": "21", "medfee_sumamt": amount("600.00"), "chrg_bchno": "Z1", "mid_setl_flag": "0"}
    pre = his.ok(his.call("2303", {"data": inpatient}))["setlinfo"]  # 2303 keeps data in Guangzhou too
    final = his.settle("2304", inpatient)["setlinfo"]
    assert Decimal(str(final["hifp_pay"])) == Decimal(str(pre["hifp_pay"])) and Decimal(str(final["medfee_sumamt"])) == Decimal("600.00")
    found = his.ok(his.call("5203", {"data": {"psn_no": psn_no, "setl_id": final["setl_id"], "mdtrt_id": stay}}))
    assert Decimal(str(found["setlinfo"]["hifp_pay"])) == Decimal(str(final["hifp_pay"]))
    back = his.settle("2305", {"setl_id": final["setl_id"], "mdtrt_id": stay, "psn_no": psn_no})["setlinfo"]
    assert Decimal(str(back["hifp_pay"])) == -Decimal(str(final["hifp_pay"]))

    # -- an admission registered by mistake, cancelled
    second = {**admission, "begntime": clock.fmt_datetime(clock.now())}
    second["ipt_otp_no" if isinstance(his, GuangdongHis) else "ipt_no"] = f"ZY{uuid.uuid4().hex[:10]}"
    mistaken = his.ok(his.call("2401", {"mdtrtinfo": second, "diseinfo": []}))["result"]["mdtrt_id"]
    his.ok(his.call("2404", his.wrap("2404", {"mdtrt_id": mistaken, "psn_no": psn_no})))


USED: set[str] = set()


def test_a_guangdong_refusal_names_the_field_as_the_client_sent_it(http, db) -> None:  # type: ignore[no-untyped-def]
    his = client(http, db, "guangzhou")
    his.sign_in()
    person = person_with(db, "310", region="440300")
    answer = his.call("2401",
                      {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", "mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno,
                                             "med_type": "21", "begntime": clock.fmt_datetime(clock.now())}})
    assert answer["infcode"] == "-1" and answer["err_msg"].startswith("input.mdtrtinfo.ipt_no:"), answer
    assert "Traceback" not in answer["err_msg"]
    answer = his.call("2207", his.wrap("2207", {"psn_no": person.psn_no}))
    assert answer["infcode"] == "-1" and answer["err_msg"].startswith("input.mdtrtinfo."), answer
    answer = his.call("2404", his.wrap("2404", {"mdtrt_id": "nothing"}))
    assert answer["infcode"] == "-1" and answer["err_msg"].startswith("input.psn_no:"), answer
    assert answer["output"] == {}


def test_the_infno_segment_must_agree_with_the_body_and_the_body_alone_routes_too(http, db) -> None:  # type: ignore[no-untyped-def]
    his = client(http, db, "guangdong")
    his.sign_in()
    body = json.dumps(his.envelope("1901", {"data": {"type": "gend"}})).encode()
    without = http.post(BASE.rstrip("/"), content=body, headers=his.headers()).json()  # DEMO posts to …/hsa/hgs
    assert without["infcode"] == "0" and without["output"]["list"], without
    other = http.post(BASE + "1101", content=body, headers=his.headers()).json()
    assert other["infcode"] == "-1" and "does not match the path's transaction 1101" in other["err_msg"]
    for elsewhere in (BASE + "hello", BASE + "1101/x", "/ebus/gdyb_inf/other"):  # never the framework's 404 page
        odd = http.post(elsewhere, content=body, headers=his.headers())
        assert odd.status_code == 200 and odd.json()["infcode"] == "-1" and "no transaction is served" in odd.json()["err_msg"], elsewhere


def test_the_guangdong_path_takes_tif_and_its_gateway_answers_auth_failures_in_its_wrapper(http, db) -> None:  # type: ignore[no-untyped-def]
    his = client(http, db, "guangdong")
    body = json.dumps(his.envelope("9001", {"signIn": {"opter_no": "0001"}})).encode()
    forged = {**his.headers(), "x-tif-signature": "0" * 64}
    refused = http.post(BASE + "9001", content=body, headers=forged).json()
    assert refused == {"code": "401", "type": "error", "message": refused["message"], "data": None}
    assert "x-tif-signature does not match" in refused["message"]
    from helpers import post_signed

    signed = post_signed(http, body, his.code, secret_of(his.code), path=BASE + "9001")
    assert signed["code"] == "403" and "takes front or tif signature headers, not yibao" in signed["message"]
    unsigned = http.post(BASE + "9001", content=body, headers={"content-type": "text/plain"}).json()
    assert unsigned == {"code": "401", "type": "error", "message": "request is not signed: this path takes front or tif signature headers",
                        "data": None}
    stale = his.headers()
    stale["x-tif-timestamp"] = str(int(time.time()) - 3600)
    stale["x-tif-signature"] = hashlib.sha256(f"{stale['x-tif-timestamp']}{his.secret}{stale['x-tif-nonce']}{stale['x-tif-timestamp']}"
                                              .encode()).hexdigest().upper()
    late = http.post(BASE + "9001", content=body, headers=stale).json()
    assert late["code"] == "401" and "platform clock" in late["message"]


def test_a_tif_nonce_as_short_as_guangdongs_clients_send_and_its_replay(http, db) -> None:  # type: ignore[no-untyped-def]
    his = client(http, db, "guangdong")
    body = json.dumps(his.envelope("9001", {"signIn": {"opter_no": "0001"}})).encode()
    ts = str(int(time.time()))
    headers = {"x-tif-paasid": his.code, "x-tif-timestamp": ts, "x-tif-nonce": "7",
               "x-tif-signature": hashlib.sha256(f"{ts}{his.secret}7{ts}".encode()).hexdigest()}
    assert http.post(BASE + "9001", content=body, headers=headers).json()["infcode"] == "0"  # SZ: 1–10 random digits
    again = http.post(BASE + "9001", content=body, headers=headers).json()
    assert again["code"] == "409" and "replayed" in again["message"]


def test_a_new_guangdong_institution_is_bound_to_its_regions_dialect_and_the_cli_rebinds_it(db, settings) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from yibao.registry import admin

    with db.unit_of_work() as session:
        added = keys.issue(session, admin.add_institution(session, fixmedins_code="H44030000099", name="深圳市第九十九人民医院", level=1),
                           schemes="tif")
        elsewhere = keys.issue(session,
                               admin.add_institution(session, fixmedins_code="H37010000099", name="济南市第九十九人民医院", level=1))
    assert added.dialect == "guangdong" and elsewhere.dialect is None
    env = {**os.environ, "YIBAO_DATABASE_URL": settings.database_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "yibao", "keys", "dialect", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    assert "dialect guangdong" in cli("H44030000099").stdout
    assert "dialect none: the path's (national on /fsi/api/…, guangdong on /ebus/" in cli("H37010000099").stdout
    assert "dialect guangzhou" in cli("H44030000099", "guangzhou").stdout
    refused = cli("H44030000099", "hainan")
    assert refused.returncode == 2 and "'hainan' is not a dialect of this platform (guangdong, guangzhou, national)" in refused.stderr
    with db.unit_of_work(write=False) as session:
        assert keys.view(session, "H44030000099").dialect == "guangzhou"


def test_a_bound_key_speaks_its_dialect_on_the_national_path_too(http, db) -> None:  # type: ignore[no-untyped-def]
    client(http, db, "guangzhou")  # binds H44030000003
    counter = CounterClient("http://testserver", "H44030000003", secret_of("H44030000003"), http=http, mdtrtarea_admvs="440300")
    signed = counter.call("9001", {"signIn": {"opter_no": "0001", "mac": "", "ip": ""}})
    assert signed["infcode"] == "0" and signed["output"]["result"] == signed["output"]["signinoutb"]


def test_dialect_list_checks_the_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    listed = subprocess.run([sys.executable, "-m", "yibao", "dialect", "list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "guangzhou (extends guangdong)" in listed.stdout and "3 dialects checked" in listed.stdout
    (tmp_path / "national.yaml").write_text("name: national\n", encoding="utf-8")
    (tmp_path / "hainan.yaml").write_text("name: hainan\ntransactions:\n  '2201': {nodes: {mdtrtinfo: date data}}\n", encoding="utf-8")
    broken = subprocess.run([sys.executable, "-m", "yibao", "dialect", "list", "--folder", str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert broken.returncode == 2
    assert broken.stderr.strip() == "yibao: hainan.yaml: transactions.2201.nodes.mdtrtinfo: 'date data' is not a node name"
