"""Administration of the registry by platform staff: institutions and their operators.

Used by `yibao institution add` and `yibao operator add`; every change goes into the audit trail.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.registry.models import Institution, Operator, Region

# a letter (H hospital, P pharmacy) and 11 digits, the first six the region: H37010000001
INSTITUTION_CODE = re.compile(r"^[A-Z]\d{11}$")


def add_institution(session: Session, *, fixmedins_code: str, name: str, admdvs: str | None = None, kind: str | None = None,
                    level: int | None = None, addr: str = "", region_name: str | None = None, actor: str = "cli") -> str:
    """A designated institution; answers its code. Its gateway key is the gateway's to issue (`yibao institution add`
    does both in one transaction)."""
    code = fixmedins_code.strip().upper()
    if not INSTITUTION_CODE.match(code):
        raise InputError("is a letter and 11 digits, the first six the region (H37010000001)", field="fixmedins_code")
    admdvs = admdvs or code[1:7]
    if code[1:7] != admdvs:
        raise InputError(f"digits 2–7 of {code} must be the region {admdvs}", field="fixmedins_code")
    if not name.strip():
        raise InputError("is required", field="name")
    kind = kind or ("2" if code.startswith("P") else "1")
    if kind not in ("1", "2"):
        raise InputError("is 1 (medical institution) or 2 (pharmacy)", field="type")
    if kind == "1" and level not in (1, 2, 3):
        raise InputError("a medical institution has level 1, 2 or 3", field="level")
    if kind == "2":
        level = None
    if session.get(Institution, code) is not None:
        raise Conflict(f"{code} exists already", field="fixmedins_code")
    if session.get(Region, admdvs) is None:
        if not region_name:
            raise NotFound(f"region {admdvs} is not known: pass its name (--region-name) to add it", field="admdvs")
        session.add(Region(admdvs=admdvs, name=region_name, prov_admdvs=admdvs[:2] + "0000"))
        session.flush()
    session.add(Institution(fixmedins_code=code, fixmedins_name=name.strip(), fixmedins_type=kind, medins_lv=level, admdvs=admdvs,
                            addr=addr, vali_flag="1"))
    session.flush()
    audit.record(session, "institution.add", actor=actor, subject=code, fixmedins_code=code, reason=name.strip())
    return code


def add_operator(session: Session, *, fixmedins_code: str, opter_no: str, name: str, actor: str = "cli") -> Operator:
    """A clerk or terminal that may sign in (9001) for the institution."""
    code = fixmedins_code.strip().upper()
    if session.get(Institution, code) is None:
        raise NotFound(f"no institution {code}: add it first (yibao institution add)", field="fixmedins_code")
    if not re.fullmatch(r"[0-9A-Za-z_-]{1,20}", opter_no or ""):
        raise InputError("is 1 to 20 letters or digits", field="opter_no")
    if not name.strip():
        raise InputError("is required", field="name")
    existing = session.get(Operator, (code, opter_no))
    if existing is not None:
        raise Conflict(f"operator {opter_no} of {code} exists already", field="opter_no")
    operator = Operator(fixmedins_code=code, opter_no=opter_no, opter_name=name.strip()[:50], active=True)
    session.add(operator)
    session.flush()
    audit.record(session, "operator.add", actor=actor, subject=opter_no, fixmedins_code=code, reason=name.strip())
    return operator
