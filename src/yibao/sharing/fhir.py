"""Settlements as FHIR R4 ``ExplanationOfBenefit`` resources in a ``searchset`` Bundle, for an insurer's FHIR tooling.

Built as plain documents and validated by constructing the ``fhir.resources`` models of FHIR 4.3 (R4B, the R4 line:
``ExplanationOfBenefit``, ``Patient`` and ``Bundle`` are structurally those of R4 4.0.1). The bundle answered is the
validated model's own JSON. docs/sharing.md has the mapping table; the code systems and identifiers are below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bundle import Bundle

FHIR_VERSION = "4.3.0"  # R4B
MEDIA_TYPE = "application/fhir+json"

# code systems and identifier systems (URNs of this platform: the national standard publishes no FHIR URIs)
ICD10_NHSA = "urn:yibao:cs:icd10-nhsa"  # 医保疾病诊断分类与代码（ICD-10 医保版）
MED_LIST = "urn:yibao:cs:med-list"  # 医保目录编码 (drugs, consumables, service items: the national 通用语言)
CHRGITM_LV = "urn:yibao:cs:chrgitm-lv"  # 收费项目等级 01 甲类 02 乙类 03 丙类(自费)
FUND = "urn:yibao:cs:fund"  # who paid: the funds of a settlement, the account, the patient's cash
INSUTYPE = "urn:yibao:cs:insutype"  # 险种类型 310 职工基本医疗保险 …
MED_TYPE = "urn:yibao:cs:med-type"  # 医疗类别 11 普通门诊 …
SETL_ID = "urn:yibao:id:setl-id"  # 结算ID
MDTRT_ID = "urn:yibao:id:mdtrt-id"  # 就诊ID
PSN_NO = "urn:yibao:id:psn-no"  # 人员编号
CERTNO_MASKED = "urn:yibao:id:certno-masked"  # 身份证号, masked (first 4 and last 4 digits)
INSTITUTION_SYSTEM = "urn:yibao:id:fixmedins-code"  # 定点医药机构编号 (the national institution code)
CONSENT = "urn:yibao:id:consent"  # the authorisation the insurer read under
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
BENEFIT_CATEGORY = "http://terminology.hl7.org/CodeSystem/ex-benefitcategory"
DIAG_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
CURRENCY = "CNY"

# settlement column → (code, 中文) of the FUND system; order as on the settlement sheet
FUNDS = (("hifp_pay", "基本医疗保险统筹基金支出"), ("cvlserv_pay", "公务员医疗补助资金支出"), ("hifes_pay", "企业补充医疗保险基金支出"),
         ("hifmi_pay", "居民大病保险资金支出"), ("hifob_pay", "职工大额医疗费用补助基金支出"), ("maf_pay", "医疗救助基金支出"),
         ("oth_pay", "其他支出"))
PAID_BY_PERSON = (("acct_pay", "个人账户支出"), ("acct_mulaid_pay", "个人账户共济支付"), ("psn_cash_pay", "个人现金支出"))
# fee line column → adjudication code (our own, in FUND's neighbour system) and 中文
LINE_PARTS = (("fulamt_ownpay_fen", "fulamt_ownpay", "全自费金额"), ("overlmt_fen", "overlmt_selfpay", "超限价自费金额"),
              ("preselfpay_fen", "preselfpay", "先行自付金额"), ("inscp_scp_fen", "inscp_scp", "符合政策范围金额"))
LINE_PART = "urn:yibao:cs:fee-part"
KIND_TYPE = {"inpatient": ("institutional", "Institutional"), "outpatient": ("professional", "Professional"),
             "pharmacy": ("pharmacy", "Pharmacy")}


@dataclass(frozen=True)
class Line:
    feedetl_sn: str
    med_list_codg: str
    med_list_name: str
    chrgitm_lv: str
    fee_ocur_time: datetime
    cnt: Decimal
    pric: Decimal
    amount_fen: int
    parts: dict[str, int]


@dataclass(frozen=True)
class Diagnosis:
    code: str
    name: str
    main: bool


@dataclass(frozen=True)
class Claim:
    """What one settlement says, read from the store (amounts in fen)."""

    setl_id: str
    mdtrt_id: str
    kind: str
    med_type: str
    insutype: str
    insutype_name: str
    fixmedins_code: str
    fixmedins_name: str
    setl_time: datetime
    begntime: datetime
    endtime: datetime | None
    reversed: bool
    total_fen: int
    amounts: dict[str, int]  # every column of FUNDS and PAID_BY_PERSON, and fund_pay_sumamt
    diagnoses: list[Diagnosis]
    lines: list[Line]


def money(fen: int) -> dict[str, Any]:
    return {"value": Decimal(fen) / 100, "currency": CURRENCY}


def _fen(value: Any) -> int:
    """Back from a Money value (the decision stand-in's way of reading amounts): yuan to fen, exactly."""
    return int((Decimal(str(value)) * 100).to_integral_value())


def masked_certno(certno: str) -> str:
    return certno[:4] + "*" * (len(certno) - 8) + certno[-4:] if len(certno) > 8 else "*" * len(certno)


def _dt(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+08:00")  # times are Beijing time throughout the platform


def patient(psn_no: str, certno: str, gend: str, brdy: date) -> dict[str, Any]:
    """The minimum an insurer needs to match its insured: the person's number, the masked ID number, sex, birth year."""
    return {"resourceType": "Patient", "id": f"psn-{psn_no}",
            "identifier": [{"system": PSN_NO, "value": psn_no}, {"system": CERTNO_MASKED, "value": masked_certno(certno)}],
            "gender": {"1": "male", "2": "female"}.get(gend, "unknown"), "birthDate": str(brdy.year)}


def explanation(claim: Claim, patient_ref: str, consent_id: str) -> dict[str, Any]:
    type_code, type_display = KIND_TYPE.get(claim.kind, KIND_TYPE["outpatient"])
    a = claim.amounts
    total = [{"category": {"coding": [{"system": ADJUDICATION, "code": "submitted", "display": "医疗费总额"}]},
              "amount": money(claim.total_fen)},
             {"category": {"coding": [{"system": ADJUDICATION, "code": "benefit", "display": "基金支付总额"}]},
              "amount": money(a["fund_pay_sumamt"])}]
    total += [{"category": {"coding": [{"system": FUND, "code": code, "display": label}]}, "amount": money(a[code])}
              for code, label in FUNDS + PAID_BY_PERSON]
    items = []
    for n, line in enumerate(claim.lines, 1):
        adjudication = [{"category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]}, "amount": money(line.amount_fen)}]
        adjudication += [{"category": {"coding": [{"system": LINE_PART, "code": code, "display": label}]}, "amount": money(line.parts[col])}
                         for col, code, label in LINE_PARTS]
        items.append({"sequence": n,
                      "productOrService": {"coding": [{"system": MED_LIST, "code": line.med_list_codg, "display": line.med_list_name}],
                                           "text": line.med_list_name},
                      "modifier": [{"coding": [{"system": CHRGITM_LV, "code": line.chrgitm_lv}]}] if line.chrgitm_lv else None,
                      "servicedDate": line.fee_ocur_time.date().isoformat(),
                      "quantity": {"value": line.cnt}, "unitPrice": {"value": line.pric, "currency": CURRENCY},
                      "net": money(line.amount_fen), "adjudication": adjudication,
                      "diagnosisSequence": [1] if claim.diagnoses else None})
    diagnoses = [{"sequence": n, "diagnosisCodeableConcept": {"coding": [{"system": ICD10_NHSA, "code": d.code, "display": d.name}],
                                                              "text": d.name},
                  "type": [{"coding": [{"system": DIAG_TYPE, "code": "principal" if d.main else "discharge"}]}]}
                 for n, d in enumerate(claim.diagnoses, 1)]
    period = {"start": _dt(claim.begntime)}
    if claim.endtime:
        period["end"] = _dt(claim.endtime)
    benefit = [{"type": {"coding": [{"system": FUND, "code": code, "display": label}]}, "usedMoney": money(a[code])}
               for code, label in FUNDS if a[code]]
    document = {
        "resourceType": "ExplanationOfBenefit", "id": f"setl-{claim.setl_id}",
        "identifier": [{"system": SETL_ID, "value": claim.setl_id}, {"system": MDTRT_ID, "value": claim.mdtrt_id}],
        # a settlement reversed since (撤销) no longer stands: the insurer must not pay on it
        "status": "cancelled" if claim.reversed else "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": type_code, "display": type_display}]},
        "subType": {"coding": [{"system": MED_TYPE, "code": claim.med_type}]},
        "use": "claim", "patient": {"reference": patient_ref}, "created": _dt(claim.setl_time), "billablePeriod": period,
        "insurer": {"display": f"基本医疗保险（{claim.insutype_name}）"},
        "provider": {"identifier": {"system": INSTITUTION_SYSTEM, "value": claim.fixmedins_code}, "display": claim.fixmedins_name},
        "outcome": "complete",
        "diagnosis": diagnoses or None,
        "insurance": [{"focal": True, "coverage": {"identifier": {"system": INSUTYPE, "value": claim.insutype},
                                                    "display": claim.insutype_name}}],
        "supportingInfo": [{"sequence": 1, "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                                                                    "code": "info"}]},
                            "code": {"coding": [{"system": CONSENT, "code": consent_id}]}}],
        "item": items or None,
        "total": total,
        "benefitBalance": [{"category": {"coding": [{"system": BENEFIT_CATEGORY, "code": "1", "display": "Medical Care"}]},
                            "financial": benefit}] if benefit else None,
    }
    return _prune(document)


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def bundle(consent_id: str, patient_doc: dict[str, Any], claims: list[Claim], now: datetime, base: str = "") -> bytes:
    """The searchset answer: one EOB per consented settlement and the patient they are about, validated; its JSON."""
    ref = f"Patient/{patient_doc['id']}"
    entries = [{"fullUrl": f"{base}ExplanationOfBenefit/setl-{c.setl_id}", "resource": explanation(c, ref, consent_id),
                "search": {"mode": "match"}} for c in claims]
    entries.append({"fullUrl": f"{base}{ref}", "resource": patient_doc, "search": {"mode": "include"}})
    document = {"resourceType": "Bundle", "type": "searchset", "timestamp": _dt(now), "total": len(claims), "entry": entries}
    return validated(document)


def validated(document: dict[str, Any]) -> bytes:
    """The bundle through the fhir.resources models (a bad mapping fails here, never at the insurer); the model's JSON."""
    return Bundle.model_validate(document).model_dump_json(exclude_none=True).encode()


def read_total(eob: Any, system: str, code: str) -> int:
    """An amount of an EOB's ``total`` in fen (0 when absent): for readers of the bundle (the decision stand-in, tests)."""
    for entry in eob.total or []:
        for coding in entry.category.coding or []:
            if coding.system == system and coding.code == code:
                return _fen(entry.amount.value)
    return 0
