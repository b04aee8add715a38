"""Registry transactions of the national interface: 1101 person lookup."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.gateway.contract import Context, TransactionSet
from yibao.registry import service


class PersonQuery(msgspec.Struct):
    mdtrt_cert_type: Required
    mdtrt_cert_no: Required
    card_sn: str = ""
    begntime: str = ""
    psn_cert_type: str = ""
    certno: str = ""
    psn_name: str = ""


class In1101(msgspec.Struct):
    data: PersonQuery


def transactions(use_token: service.TokenCheck) -> TransactionSet:
    """The registry's transactions. `use_token` checks an ecToken (the e-credential's, passed in by yibao.app)."""
    found = TransactionSet()
    found.register("1101", "人员信息获取", In1101, paths=("/fsi/api/fsiPsnInfoService/queryPsnInfo",))(
        lambda ctx, query: person_info(ctx, query, use_token))
    return found


def person_info(ctx: Context, query: In1101, use_token: service.TokenCheck) -> dict:
    return look_up(ctx.session, ctx.fixmedins_code, query.data, use_token)[1]


def look_up(session: Session, fixmedins_code: str, q: PersonQuery, use_token: service.TokenCheck) -> tuple[Any, dict]:
    """The person a credential proves, and 1101's answer about them (a federation's home node answers it too)."""
    where = "input.data"
    if q.mdtrt_cert_type == "02":
        person = service.find_by_id_number(session, q.mdtrt_cert_no, q.psn_cert_type or service.ID_CARD, f"{where}.mdtrt_cert_no")
        if q.card_sn and service.looks_like_ec_token(q.card_sn):
            service.verify_credential(session, person, "02", q.mdtrt_cert_no, q.card_sn, where, fixmedins_code, use_token)
    elif q.mdtrt_cert_type == "03":
        if not q.card_sn:
            raise InputError("required when mdtrt_cert_type is 03 (social-security card)", field=f"{where}.card_sn")
        person = service.find_by_card(session, q.mdtrt_cert_no, q.card_sn, f"{where}.mdtrt_cert_no")
    elif q.mdtrt_cert_type == "01":
        token = use_token(session, q.mdtrt_cert_no, fixmedins_code, f"{where}.mdtrt_cert_no")
        person = service.person(session, token.psn_no, where)
    else:
        raise InputError(f"'{q.mdtrt_cert_type}' is not a credential type (01, 02, 03)", field=f"{where}.mdtrt_cert_type")
    if q.certno and q.certno.strip().upper() != person.certno:
        raise InputError("does not match the person the credential belongs to", field=f"{where}.certno")
    if q.psn_name and q.psn_name.strip() != person.psn_name:
        raise InputError("does not match the person the credential belongs to", field=f"{where}.psn_name")
    as_of = clock.parse_datetime(q.begntime, f"{where}.begntime") if q.begntime else None
    return person, service.person_answer(session, person, as_of)
