"""Numbers stay numbers: a whole day through the signed gateway, every answer read the way a strict client reads it.

Clients deserialize answers into their own model classes (C# non-nullable decimals, Java BigDecimal): a ``null`` in a
numeric field throws for the whole batch, and a list the spec names that is absent breaks the loop over it. The spec's
field types come from ``tests/data/interface_output_fields.json``, a copy of the answer blocks of interface-fields.md
(the brief's extract of 《医疗保障信息平台 定点医药机构接口规范》); when the brief is at hand the copy is checked
against it, so the test never depends on that path existing.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, cert, fee, person_with, serial
from yibao.client import CounterClient
from yibao.core import clock

DATA = Path(__file__).parent / "data" / "interface_output_fields.json"
BRIEF = Path("/work/shared/brief/interface-fields.md")
PHARMACY = "P37010000007"

# -- the spec's answer fields ----------------------------------------------------------------------------------

_SECTION = re.compile(r"^## (\S+)")
_BLOCK = re.compile(r"^\*\*(\w+)\*\*\s*$")
_FIELD = re.compile(r"^- `(\w+)` \(([^)]*)\)\s*(.*)$")
_SPEC_TYPE = re.compile(r"数值型|整型|字符型|日期时间型|日期型")
_NUMERIC_CS = {"decimal", "decimal?", "int", "int?", "double", "double?", "float", "float?", "long", "long?"}


def kind_of(cs_type: str, description: str) -> str:
    """num / str / date / list / obj. The spec's own type word (数值型, 字符型…) wins over the client's C# type, which is
    sometimes wrong (``fund_pay_type`` is decimal in the client, 字符型 in the spec)."""
    found = _SPEC_TYPE.search(description)
    if found:
        word = found.group(0)
        return "num" if word in ("数值型", "整型") else "str" if word == "字符型" else "date"
    if cs_type.startswith("List<"):
        return "list"
    if cs_type in _NUMERIC_CS:
        return "num"
    if cs_type.startswith("DateTime"):
        return "date"
    return "str" if cs_type == "string" else "obj"


def parse_fields(text: str) -> dict[str, dict[str, str]]:
    """The answer-side blocks of interface-fields.md: "<section>/<Block>" → {field: kind}. A section's blocks from its
    first Out* block on are the answer's; the request's come before it."""
    blocks: dict[str, dict[str, str]] = {}
    section, block, answer_side = "", "", False
    for line in text.splitlines():
        if m := _SECTION.match(line):
            section, block, answer_side = m.group(1), "", False
        elif m := _BLOCK.match(line):
            block = m.group(1)
            answer_side = answer_side or block.startswith("Out")
        elif (m := _FIELD.match(line)) and answer_side and block:
            blocks.setdefault(f"{section}/{block}", {}).setdefault(m.group(1), kind_of(m.group(2).strip(), m.group(3)))
    return blocks


# Sections of transactions yibao serves (3101 and the 7xxx e-prescription family are not served yet).
SERVED_SECTIONS = {"Envelope", "9001", "9002", "1101", "2201", "2204", "2206", "2207", "2208", "3201", "3202", "5201", "5203", "5204",
                   "5205", "1301", "1901"}


def spec_blocks() -> dict[str, dict[str, str]]:
    return json.loads(DATA.read_text(encoding="utf-8"))["blocks"]


def test_the_copy_matches_the_brief() -> None:
    if not BRIEF.exists():
        pytest.skip("the brief is not on this machine: the copy in tests/data stands")
    parsed = {k: v for k, v in parse_fields(BRIEF.read_text(encoding="utf-8")).items() if k.split("/")[0] in SERVED_SECTIONS}
    assert spec_blocks() == parsed


# Each transaction's answer: node → (shape, spec block). Shapes follow interface.md where the extract's C# model differs
# (2204 ``result`` and 2208's ``setldetail`` are arrays on the wire; the model has a single object).
SETTLE = {"setlinfo": ("object", "2207/SetlInfo2"), "setldetail": ("list", "2207/SetlDetail2")}
PRE_SETTLE = {"setlinfo": ("object", "2206/SetlInfo"), "setldetail": ("list", "2206/SetlDetail")}
REVERSE = {"setlinfo": ("object", "2208/SetlInfo3"), "setldetail": ("list", "2208/SetlDetail3")}
CATALOGUE_FILE = {"": ("flat", "1301/Out1301")}
ANSWERS: dict[str, dict[str, tuple[str, str]]] = {
    "9001": {"signinoutb": ("object", "9001/Signinoutb")},
    "9002": {"signoutoutb": ("object", "9002/Signoutoutb")},
    "1101": {"baseinfo": ("object", "1101/BaseInfo"), "insuinfo": ("list", "1101/InsuInfo"), "idetinfo": ("list", "1101/IdetInfo")},
    "1901": {"list": ("list", "1901/Out1901")},
    "1301": CATALOGUE_FILE, "1302": CATALOGUE_FILE, "1305": CATALOGUE_FILE, "1306": CATALOGUE_FILE, "1307": CATALOGUE_FILE,
    "1308": CATALOGUE_FILE,
    "2201": {"data": ("object", "2201/Data")},
    "2204": {"result": ("list", "2204/Result")},
    "2301": {"result": ("list", "2204/Result")},
    "2206": PRE_SETTLE, "2303": PRE_SETTLE, "2101": PRE_SETTLE,
    "2207": SETTLE, "2304": SETTLE, "2102": SETTLE,
    "2208": REVERSE, "2305": REVERSE, "2103": REVERSE,
    "3201": {"": ("flat", "3201/Out3201")},
    "5201": {"mdtrtinfo": ("list", "5201/Out5201")},
    "5203": {"setlinfo": ("object", "5203/Setlinfo"), "setldetail": ("list", "5203/Setldetail")},
    "5204": {"feedetail": ("list", "5204/Out5204")},
    "5205": {"feedetail": ("list", "5205/Out5205")},
}
# Names the extract spells unlike the wire: the client model's typos (pdn_cash_pay, opt_timeP) and 1901's camelCase, which
# interface-notes.md and interface-notes-2.md both give in snake_case.
WIRE_NAME = {"pdn_cash_pay": "psn_cash_pay", "opt_timeP": "opt_time", "parentValue": "parent_value", "valiFlag": "vali_flag",
             "createUser": "create_user", "createDate": "create_date"}


def rows_of(answer: dict[str, Any], node: str, shape: str) -> list[Any]:
    output = answer["output"]
    if shape == "flat":
        return [output]
    value = output.get(node)
    return value if isinstance(value, list) else [value]


# -- a whole day through the gateway -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def day(http, db) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """Every answer of an outpatient visit, an inpatient stay, a pharmacy purchase, the queries and the catalogue."""
    answers: list[tuple[str, dict[str, Any]]] = []

    def call(client: CounterClient, infno: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.call(infno, body)
        assert answer["infcode"] == 0, (infno, answer["err_msg"])
        answers.append((infno, answer))
        return answer["output"]

    codes = catalogue_codes(db)
    counter = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    answers.append(("9001", counter.sign_in()))
    person = person_with(db, "310", retired=False)
    call(counter, "1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "psn_cert_type": "01"}})
    call(counter, "1901", {"data": {"type": "med_type"}})
    for infno in ("1301", "1302", "1305", "1306", "1307", "1308"):
        call(counter, infno, {"data": {"ver": "0"}})
    answers.append(("1312", counter.call("1312", {"data": {"page_num": 1, "page_size": 50, "list_type": "102"}})))

    # outpatient: the registration fee (no price cap) and herbal pieces (no cap), a capped drug, a line outside the catalogue
    reg = call(counter, "2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                          **cert(person), "ipt_otp_no": serial("WN"), "atddr_no": "D37010000001", "dr_name": "医生",
                                          "dept_code": "A03", "dept_name": "内科", "caty": "A03"}})
    mdtrt_id = reg["data"]["mdtrt_id"]
    call(counter, "2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "11"},
                           "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}]})
    lines = [(codes["jia"], "12.00"), (codes["yi"], "30.00"), (codes["bing"], "8.00"), (codes["otc_capped"], "20.00"),
             ("XNOTINCATALOG0000000001", "5.00")]
    call(counter, "2204", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]})
    total = sum(Decimal(a) for _, a in lines)
    data = {"psn_no": person.psn_no, **cert(person), "med_type": "11", "medfee_sumamt": total, "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    call(counter, "2206", {"data": data})
    setl_id = call(counter, "2207", {"data": data})["setlinfo"]["setl_id"]
    call(counter, "5201", {"data": {"psn_no": person.psn_no}})
    call(counter, "5203", {"data": {"psn_no": person.psn_no, "setl_id": setl_id, "mdtrt_id": mdtrt_id}})
    call(counter, "5204", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id}})
    call(counter, "5205", {"data": {"psn_no": person.psn_no, "begntime": "2026-01-01 00:00:00"}})
    call(counter, "2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}})

    # inpatient
    stay = call(counter, "2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                "ipt_no": serial("WZ"), "begntime": clock.fmt_datetime(clock.now())},
                                  "diseinfo": [{"diag_type": "1", "diag_code": "K35.900",
                                                "diag_name": "急性阑尾炎"}]})["result"]["mdtrt_id"]
    call(counter, "2301", {"feedetail": [fee(stay, person.psn_no, codes["jia"], "600.00"), fee(stay, person.psn_no, codes["yi"], "90.00")]})
    call(counter, "2402", {"dscginfo": {"mdtrt_id": stay, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                        "dscg_way": "1"}})
    stay_data = {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal("690.00"), "psn_setlway": "01", "mdtrt_id": stay,
                 "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": "0"}
    call(counter, "2303", {"data": stay_data})
    stay_setl = call(counter, "2304", {"data": stay_data})["setlinfo"]["setl_id"]
    call(counter, "5203", {"data": {"psn_no": person.psn_no, "setl_id": stay_setl, "mdtrt_id": stay}})
    call(counter, "5204", {"data": {"psn_no": person.psn_no, "mdtrt_id": stay}})
    call(counter, "2305", {"data": {"setl_id": stay_setl, "mdtrt_id": stay, "psn_no": person.psn_no}})

    # pharmacy
    pharmacy = CounterClient("http://testserver", PHARMACY, secret_of(PHARMACY), http=http)
    answers.append(("9001", pharmacy.sign_in()))
    buyer = {"psn_no": person.psn_no, "insutype": "310", **cert(person), "acct_used_flag": "0", "psn_setlway": "01",
             "medfee_sumamt": Decimal("18.00")}
    drugs = [{"feedetl_sn": "1", "med_list_codg": codes["jia"], "det_item_fee_sumamt": Decimal("18.00"), "cnt": 1, "pric": Decimal("18"),
              "rxno": "RX" + serial("")}]
    call(pharmacy, "2101", {"data": buyer, "drugdetail": drugs})
    bought = call(pharmacy, "2102", {"data": buyer, "drugdetail": drugs})["setlinfo"]
    call(pharmacy, "2103", {"data": {"setl_id": bought["setl_id"], "mdtrt_id": bought["mdtrt_id"], "psn_no": person.psn_no}})

    today = clock.today().isoformat()
    call(counter, "3201", {"data": {"insutype": "", "clr_type": "", "setl_optins": "370100", "stmt_begndate": today, "stmt_enddate": today,
                                    "medfee_sumamt": 0, "fund_pay_sumamt": 0, "acct_pay": 0, "fixmedins_setl_cnt": 0}})
    call(counter, "9002", {"signOut": {"sign_no": counter.sign_no, "opter_no": counter.opter}})
    return answers


def test_the_day_covers_every_answer_with_a_spec(day) -> None:  # type: ignore[no-untyped-def]
    walked = {infno for infno, _ in day}
    assert set(ANSWERS) - walked == set()


def test_no_numeric_field_is_ever_null(day) -> None:  # type: ignore[no-untyped-def]
    blocks = spec_blocks()
    nulls = []
    for infno, answer in day:
        assert answer["infcode"] == 0, answer
        assert all(answer[k] is not None for k in ("infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg"))
        for node, (shape, block) in ANSWERS.get(infno, {}).items():
            numeric = [WIRE_NAME.get(f, f) for f, kind in blocks[block].items() if kind == "num"]
            for i, row in enumerate(rows_of(answer, node, shape)):
                if isinstance(row, dict):
                    nulls += [f"{infno} {node}[{i}].{f}" for f in numeric if f in row and row[f] is None]
    # 1312 is not in the extract; its price cap is the same 定价上限金额 (16,6) as 2204's
    for infno, answer in day:
        if infno == "1312":
            assert answer["output"]["data"], "the herbal pieces page is empty"
            nulls += [f"1312 data[{i}].pric_uplmt_amt" for i, row in enumerate(answer["output"]["data"]) if row["pric_uplmt_amt"] is None]
    assert nulls == []


def test_items_without_a_price_cap_say_so_with_the_platform_sentinel(day) -> None:  # type: ignore[no-untyped-def]
    fee_lines = next(a for i, a in day if i == "2204")["output"]["result"]
    no_cap = [line for line in fee_lines if line["feedetl_sn"] and Decimal(str(line["pric_uplmt_amt"])) >= Decimal("99999999")]
    assert len(no_cap) >= 3  # registration-free herbal pieces, the service item and the line outside the catalogue
    capped = [line for line in fee_lines if Decimal(str(line["pric_uplmt_amt"])) < Decimal("99999999")]
    assert len(capped) == 1 and Decimal(str(capped[0]["pric_uplmt_amt"])) > 0


def test_every_list_the_spec_names_is_present(day) -> None:  # type: ignore[no-untyped-def]
    missing = []
    for infno, answer in day:
        for node, (shape, _) in ANSWERS.get(infno, {}).items():
            if shape == "list" and not isinstance(answer["output"].get(node), list):
                missing.append(f"{infno} {node}: {answer['output'].get(node)!r}")
    assert missing == []


def is_number(value: Any) -> bool:
    """A number, or an amount written as a string (the interface allows both)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, Decimal, float)):
        return True
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except ArithmeticError:
        return False


def test_every_spec_field_is_present_with_its_spec_type(day) -> None:  # type: ignore[no-untyped-def]
    blocks = spec_blocks()
    wrong = []
    for infno, answer in day:
        for node, (shape, block) in ANSWERS.get(infno, {}).items():
            for i, row in enumerate(rows_of(answer, node, shape)):
                assert isinstance(row, dict), (infno, node, row)
                for name, kind in blocks[block].items():
                    field = WIRE_NAME.get(name, name)
                    where = f"{infno} {node}[{i}].{field}"
                    if field not in row:
                        wrong.append(f"{where} is absent")
                    elif kind == "num" and not is_number(row[field]):
                        wrong.append(f"{where} = {row[field]!r} is not a number")
                    elif kind == "str" and not isinstance(row[field], str):
                        wrong.append(f"{where} = {row[field]!r} is not text")
                    elif kind == "date" and row[field] is not None and not isinstance(row[field], str):
                        wrong.append(f"{where} = {row[field]!r} is not a date")
    assert wrong == []


if __name__ == "__main__":  # refresh the copy from the brief: python tests/test_wire_numbers.py
    fields = {k: v for k, v in parse_fields(BRIEF.read_text(encoding="utf-8")).items() if k.split("/")[0] in SERVED_SECTIONS}
    DATA.write_text(json.dumps({
        "source": "interface-fields.md of the project brief: the answer-side blocks of 《医疗保障信息平台 定点医药机构接口规范》 "
                  "as a public HIS client for a Shenzhen clinic models them (GitHub binzhe12123/Medical, SY.Com.Medical.Model/SYB). "
                  "Kinds: num (数值型, 整型 or a numeric C# type), str (字符型), date (日期型, 日期时间型), list, obj. "
                  "Regenerate: python tests/test_wire_numbers.py",
        "blocks": fields,
    }, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")
