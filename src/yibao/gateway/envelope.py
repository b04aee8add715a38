"""The national request and response envelopes."""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec

from yibao.core import clock
from yibao.core.schema import Required

SixDigits = Annotated[str, msgspec.Meta(pattern=r"^\d{6}$")]
InstitutionCode = Annotated[str, msgspec.Meta(pattern=r"^[HP]\d{11}$")]


class Envelope(msgspec.Struct, kw_only=True):
    """Request envelope (公共输入参数). Unknown keys are ignored, as real platforms do."""

    infno: Annotated[str, msgspec.Meta(min_length=4, max_length=6)]
    msgid: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    mdtrtarea_admvs: SixDigits
    insuplc_admdvs: str = ""
    recer_sys_code: str = ""
    dev_no: str = ""
    dev_safe_info: str = ""
    cainfo: str = ""
    signtype: str = ""
    infver: str = "V1.0"
    opter_type: Annotated[str, msgspec.Meta(pattern=r"^[123]$")]
    opter: Required
    opter_name: str = ""
    inf_time: Required
    fixmedins_code: InstitutionCode
    fixmedins_name: str = ""
    sign_no: str = ""
    input: Any = None


# Encoder for answers: amounts are Decimals written as JSON numbers with their 2 places.
ENCODER = msgspec.json.Encoder(decimal_format="number")
DECODER = msgspec.json.Decoder(float_hook=__import__("decimal").Decimal)

_sequence = itertools.count(random.SystemRandom().randrange(10**6))
_worker = os.getpid() % 1000


def new_refmsgid(admdvs: str, at: datetime) -> str:
    """Receiver region (6) + yyyyMMddHHmmss (14) + sequence (10), unique across workers."""
    return f"{admdvs}{at:%Y%m%d%H%M%S}{_worker:03d}{next(_sequence) % 10**7:07d}"


@dataclass
class Answer:
    """What a transaction returns: the ``output`` object, or a file (9102)."""

    output: Any = None
    file_name: str | None = None
    file_content: bytes | None = None
    # told to the counter beside a successful answer (e.g. the account did not pay: see encounter.service.settle)
    warn_msg: str = ""


def response(*, admdvs: str, received: datetime, infcode: int, output: Any = None, err_msg: str = "", warn_msg: str = "") -> dict[str, Any]:
    return {
        "infcode": infcode,
        "inf_refmsgid": new_refmsgid(admdvs, received),
        "refmsg_time": clock.fmt_compact_ms(received),
        "respond_time": clock.fmt_compact_ms(clock.now()),
        "err_msg": err_msg[:200],
        "warn_msg": warn_msg[:200],
        "cainfo": "",
        "signtype": "",
        "output": output,
    }
