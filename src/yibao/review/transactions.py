"""3101 明细审核事前分析服务 and 3102 明细审核事中分析服务: a claim as the HIS holds it, reviewed against the rule library.

Input as the specification and real HIS clients (openhis ``FsiPatient3101Param``/``FsiEncounter3101Param``, DHC) send
it: ``input.data`` with ``patient_dtos[]`` (patn_id, gend, brdy, curr_mdtrt_id, ``fsi_encounter_dtos[]`` each with
``fsi_diagnose_dtos[]``, ``fsi_order_dtos[]``, ``fsi_operation_dtos[]``), ``trig_scen`` (3101: 1–5 事前; 3102: 6–10
事中) or ``rule_ids``, ``task_id``. The encounter ``curr_mdtrt_id`` names is the claim; the person's other encounters
are its history (previous stays for split admission and readmission, earlier orders for duplicates and limits).
Nothing is written: the answer is ``result[]``, one entry per fired rule and line, with ``judge_result_detail_dtos[]``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.money import to_fen, yuan
from yibao.gateway.contract import Context, TransactionSet
from yibao.review import checker, service
from yibao.review.rules import BEHAVIOUR

TRANSACTIONS = TransactionSet()
# orders of one patient's encounters reviewed in one request: a whole stay fits, a flood does not
MAX_ORDERS = 5_000

Text = str | int | float | None
BEFORE_SCENES = {"1", "2", "3", "4", "5"}   # 门诊挂号, 门诊收费登记, 住院登记, 住院收费登记, 住院执行医嘱
DURING_SCENES = {"6", "7", "8", "9", "10"}  # 门诊结算, 门诊预结算, 住院结算, 住院预结算, 购药划卡
INPATIENT_SCENES = {"3", "4", "5", "8", "9"}


class Diagnose(msgspec.Struct):
    dise_codg: Text = ""
    diag_code: Text = ""
    dise_name: Text = ""
    maindise_flag: Text = ""
    maindiag_flag: Text = ""


class Order(msgspec.Struct):
    rx_id: Text = ""
    hilist_code: Text = ""
    hilist_name: Text = ""
    hosplist_name: Text = ""
    cnt: Text = "1"
    pric: Text = ""
    sumamt: Text = ""
    drord_begn_date: Text = ""
    curr_drord_flag: Text = ""


class Encounter(msgspec.Struct):
    mdtrt_id: Text = ""
    medins_id: Text = ""
    medins_lv: Text = ""
    adm_date: Text = ""
    dscg_date: Text = ""
    dscg_main_dise_codg: Text = ""
    med_mdtrt_type: Text = ""
    med_type: Text = ""
    fsi_diagnose_dtos: list[Diagnose] | None = None
    fsi_order_dtos: list[Order] | None = None
    fsi_operation_dtos: list[Any] | None = None


class Patient(msgspec.Struct):
    patn_id: Text = ""
    patn_name: Text = ""
    gend: Text = ""
    brdy: Text = ""
    poolarea: Text = ""
    curr_mdtrt_id: Text = ""
    fsi_encounter_dtos: list[Encounter] | None = None


class Data(msgspec.Struct):
    patient_dtos: list[Patient] | None = None
    trig_scen: Text = ""
    rule_ids: str | list[str] | None = None
    task_id: Text = ""
    syscode: Text = ""


class In3101(msgspec.Struct):
    data: Data


def _s(value: Text) -> str:
    return "" if value is None else str(value).strip()


def hosp_level(text: str) -> int:
    """医疗机构等级: 1–3 as yibao keeps it, or the national hosp_lv code (01–04 三级, 05–07 二级, 08–10 一级, 11 未定级: 0)."""
    if text in ("1", "2", "3"):
        return int(text)
    if text.isdigit():
        n = int(text)
        return 3 if 1 <= n <= 4 else 2 if 5 <= n <= 7 else 1 if 8 <= n <= 10 else 0
    return 0


def _when(text: str, field: str, default: datetime) -> datetime:
    return clock.parse_datetime(text, field) if text else default


def _order_line(order: Order, i: int, at: str, default_day: datetime) -> checker.Line:
    code = _s(order.hilist_code).upper()
    if not code:
        raise InputError("hilist_code is required", field=f"{at}.hilist_code")
    try:
        cnt = Decimal(_s(order.cnt) or "1")
    except InvalidOperation:
        raise InputError(f"'{_s(order.cnt)[:20]}' is not a number", field=f"{at}.cnt") from None
    if not cnt.is_finite() or cnt <= 0 or cnt > 10**9:
        raise InputError("cnt must be a positive number", field=f"{at}.cnt")
    if _s(order.sumamt):
        amount = to_fen(_s(order.sumamt), f"{at}.sumamt")
    elif _s(order.pric):
        amount = int((Decimal(to_fen(_s(order.pric), f"{at}.pric")) * cnt).to_integral_value())
    else:
        amount = 0
    day = _when(_s(order.drord_begn_date), f"{at}.drord_begn_date", default_day).date()
    return checker.Line(_s(order.rx_id) or str(i), code, _s(order.hilist_name) or _s(order.hosplist_name), cnt, amount, day, i)


def _claims(data: Data, inpatient_scene: bool) -> list[checker.Claim]:
    if not data.patient_dtos:
        raise InputError("patient_dtos is required", field="input.data.patient_dtos")
    now, found = clock.now(), []
    for p, patient in enumerate(data.patient_dtos):
        at = f"input.data.patient_dtos[{p}]"
        encounters = patient.fsi_encounter_dtos or []
        if not encounters:
            raise InputError("fsi_encounter_dtos is required", field=f"{at}.fsi_encounter_dtos")
        current_id = _s(patient.curr_mdtrt_id) or _s(encounters[0].mdtrt_id)
        index = next((i for i, e in enumerate(encounters) if _s(e.mdtrt_id) == current_id), None)
        if index is None:
            raise InputError(f"no encounter {current_id[:30]} among fsi_encounter_dtos", field=f"{at}.curr_mdtrt_id")
        current = encounters[index]
        birth = clock.parse_date(_s(patient.brdy), f"{at}.brdy") if _s(patient.brdy) else None
        begin = _when(_s(current.adm_date), f"{at}.fsi_encounter_dtos[{index}].adm_date", now)
        diagnoses = [(_s(d.dise_codg) or _s(d.diag_code)).upper() for d in current.fsi_diagnose_dtos or []]
        main = _s(current.dscg_main_dise_codg).upper() or next(
            ((_s(d.dise_codg) or _s(d.diag_code)).upper() for d in current.fsi_diagnose_dtos or []
             if "1" in (_s(d.maindise_flag), _s(d.maindiag_flag))), diagnoses[0] if diagnoses else "")
        lines: list[checker.Line] = []
        earlier: list[checker.Line] = []
        stays: list[checker.Stay] = []
        given = sum(len(encounter.fsi_order_dtos or []) for encounter in encounters)
        if given > MAX_ORDERS:
            raise InputError(f"{given} orders in one patient's encounters: at most {MAX_ORDERS} a request (send the claim in parts)",
                             field=f"{at}.fsi_encounter_dtos")
        for e, encounter in enumerate(encounters):
            orders = [_order_line(o, i, f"{at}.fsi_encounter_dtos[{e}].fsi_order_dtos[{i}]", begin)
                      for i, o in enumerate(encounter.fsi_order_dtos or [])]
            if e == index:
                lines = orders
                continue
            earlier.extend(o for o in orders if _s(encounter.mdtrt_id) == current_id)
            discharged = _s(encounter.dscg_date)
            if discharged:
                stays.append(checker.Stay(_s(encounter.mdtrt_id), _s(encounter.dscg_main_dise_codg).upper(),
                                          clock.parse_datetime(discharged, f"{at}.fsi_encounter_dtos[{e}].dscg_date")))
        inpatient = inpatient_scene or _s(current.med_type).startswith("2")
        claim = checker.Claim(
            patn_id=_s(patient.patn_id), mdtrt_id=current_id, gend=_s(patient.gend), age=clock.age_on(birth, begin.date()) if birth else -1,
            kind="inpatient" if inpatient else "outpatient", hosp_lv=hosp_level(_s(current.medins_lv)), begin=begin,
            diagnoses=tuple(diagnoses), main_diagnosis=main, lines=tuple(lines), earlier_lines=tuple(earlier), previous_stays=tuple(stays))
        found.append(claim)
    return found


def _item_type(code: str) -> str:
    """违规明细类型: 1 药品, 2 诊疗项目, 3 医用耗材."""
    return "1" if code[:1] in ("X", "Z", "T") else "3" if code[:1] == "C" else "2"


def review(data: Data, scenes: set[str], infno: str) -> dict[str, Any]:
    scene = _s(data.trig_scen)
    rule_ids = data.rule_ids if isinstance(data.rule_ids, list) else (data.rule_ids or "").replace(";", ",").split(",")
    wanted = {r.strip().upper() for r in rule_ids if r and r.strip()}
    if not scene and not wanted:
        raise InputError("trig_scen or rule_ids is required", field="input.data.trig_scen")
    if scene and scene not in scenes:
        raise InputError(f"trig_scen {scene[:3]} is not a scene of {infno} ({', '.join(sorted(scenes, key=int))})",
                         field="input.data.trig_scen")
    book = service.rule_book()
    if wanted:
        unknown = sorted(wanted - {r.rule_id for r in book.rules})
        if unknown:
            raise InputError(f"no rule {', '.join(unknown)[:60]}", field="input.data.rule_ids")
        book = book.only(wanted)
    task_id = _s(data.task_id)
    result = []
    for claim in _claims(data, scene in INPATIENT_SCENES):
        for violation in checker.check(book, claim):
            line, rule = violation.line, violation.rule
            jr_id = f"JR{clock.now():%Y%m%d%H%M%S}{secrets.token_hex(6)}"
            details = [] if line is None else [{
                "jrd_id": f"{jr_id}-1", "patn_id": claim.patn_id, "mdtrt_id": claim.mdtrt_id, "rx_id": line.key,
                "vola_item_type": _item_type(line.code), "vola_amt": yuan(line.amount)}]
            result.append({
                "jr_id": jr_id, "rule_id": rule.rule_id, "rule_name": rule.name, "vola_cont": violation.content,
                "patn_id": claim.patn_id, "mdtrt_id": claim.mdtrt_id, "judge_result_detail_dtos": details,
                "vola_amt": yuan(violation.amount), "vola_amt_stas": "1", "sev_deg": rule.severity, "vola_evid": rule.basis,
                "vola_bhvr_type": BEHAVIOUR[rule.kind], "task_id": task_id,
                # ours, in the spec's style: what settlement does about it (refuse / selfpay / warn)
                "vola_hndl": rule.action})
    return {"result": result}


# The answer follows from the request alone, so a repeated msgid is simply reviewed again: not stored (a claim near the
# body limit would otherwise store an answer several times its size).
@TRANSACTIONS.register("3101", "明细审核事前分析服务", In3101, reads_only=True, store_answer=False)
def review_before(ctx: Context, body: In3101) -> dict:
    return review(body.data, BEFORE_SCENES, "3101")


@TRANSACTIONS.register("3102", "明细审核事中分析服务", In3101, reads_only=True, store_answer=False)
def review_during(ctx: Context, body: In3101) -> dict:
    return review(body.data, DURING_SCENES, "3102")
