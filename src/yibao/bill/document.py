"""What a bill says and how it is signed: the canonical form, the signature and the check code (docs/bills.md).

The signed content is a JSON object whose every value is a string, a list or an object (amounts as yuan strings with
two places, "12.30"; never a number, so no float or exponent form can differ between writers). Its canonical bytes are
the UTF-8 of the JSON text with keys sorted by code point, no whitespace (separators "," and ":") and non-ASCII
characters written as themselves (not \\u escapes): what ``json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` writes in Python, and what any verifier can rebuild from the document it holds.

The signature is SM2 with SM3 and the standard ID (yibao.core.sm2) over those bytes, as base64 DER. The check code
(校验码) is the first six hex digits (upper case) of SM3 over the signature's DER bytes: short enough to type, and
bound to this one signed bill.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from yibao.core import crypto, sm2

VERSION = "1"
CHARGE_CATEGORIES = {"01": "床位费", "02": "诊察费", "03": "检查费", "04": "化验费", "05": "治疗费", "06": "手术费", "07": "护理费",
                     "08": "卫生材料费", "09": "西药费", "10": "中药饮片费", "11": "中成药费", "12": "一般诊疗费", "13": "挂号费",
                     "14": "其他费"}
# the fund split as the bill shows it: settlement column → its name (医保统筹基金支付, 其他支付, 个人账户支付, 个人现金支付)
FUNDS = {"hifp_pay": "统筹基金支付", "cvlserv_pay": "公务员医疗补助", "hifob_pay": "大额医疗费用补助", "hifmi_pay": "大病保险",
         "maf_pay": "医疗救助", "hifes_pay": "企业补充医疗保险", "oth_pay": "其他基金支付", "fund_pay_sumamt": "基金支付合计",
         "acct_pay": "个人账户支付", "acct_mulaid_pay": "个人账户共济支付", "psn_cash_pay": "个人现金支付",
         "hosp_part_amt": "医院负担"}
KINDS = {"blue": "医疗收费电子票据", "red": "医疗收费电子票据（红字）"}


class Malformed(ValueError):
    """A document that is not a bill's content (not an object of strings, lists and objects)."""


def _check_values(value: Any, depth: int = 0) -> None:
    if depth > 6:
        raise Malformed("too deep")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise Malformed("keys are strings")
            _check_values(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_values(v, depth + 1)
    elif not isinstance(value, str):
        raise Malformed("every value is a string")


def canonical(document: dict[str, Any], *, checked: bool = False) -> bytes:
    """The bytes that are signed (see the module's text). ``checked``: the document was built here, of strings only."""
    if not isinstance(document, dict):
        raise Malformed("a bill is an object")
    if not checked:
        _check_values(document)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(private_pem: str, document: dict[str, Any]) -> str:
    return sm2.sign(private_pem, canonical(document))


def verify(public_pem: str, document: dict[str, Any], signature: str) -> bool:
    try:
        message = canonical(document)
    except Malformed:
        return False
    return sm2.verify(public_pem, message, signature)


def check_code(signature: str) -> str:
    try:
        der = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return ""
    return crypto.sm3_hex(der)[:6].upper()


def bill_code(admdvs: str, kind: str, year: int) -> str:
    """票据代码, 8 digits in the shape of the 财政电子票据 code: the province (2), the bill kind (2: 06 medical outpatient,
    07 medical inpatient), the year (2) and the batch (2, 01)."""
    return f"{admdvs[:2]}{'07' if kind == 'inpatient' else '06'}{year % 100:02d}01"


def mask_certno(certno: str) -> str:
    return certno[:4] + "*" * max(len(certno) - 8, 0) + certno[-4:] if len(certno) > 8 else "*" * len(certno)


def mask_name(name: str) -> str:
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
