"""A node's part of the federation: the calls it answers for other nodes (through the hub), each in its own
transaction, and its national-interface transactions that meet people insured in another province."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from yibao.core import clock
from yibao.core.errors import InputError, NotFound
from yibao.encounter import treatment
from yibao.encounter.models import Visit
from yibao.federation import care, home
from yibao.federation.nodes import Federation
from yibao.gateway.contract import Context, Transaction
from yibao.registry import service as registry
from yibao.registry.models import Institution
from yibao.registry.transactions import PersonQuery
from yibao.store.db import Database

# what another node may ask of this one (through the hub); confirming and releasing are this node's own decisions
OPS = ("settle", "reverse", "person", "prove", "status", "treatment")


def _body(body: Any, kind: type[Any]) -> Any:
    try:
        return msgspec.convert(body, kind, strict=False)
    except msgspec.ValidationError as error:
        raise InputError(f"malformed federation call: {error}"[:200]) from None


def answer(db: Database, federation: Federation, op: str, origin: str, body: Any, use_token: registry.TokenCheck) -> Any:
    """One call another node made through the hub. A concurrent twin of a settlement (same key) that committed first
    is answered from its record."""
    for attempt in (1, 2):
        try:
            with db.unit_of_work() as session:
                if op == "settle":
                    return home.settle(session, origin, _body(body, home.SettleCall), use_token)
                if op == "reverse":
                    return home.reverse(session, origin, _body(body, home.ReverseCall), federation.admdvs)
                if op == "person":
                    return home.person(session, str(body.get("fixmedins_code", "")), _body(body.get("query"), PersonQuery), use_token)
                if op == "prove":
                    return home.prove(session, _body(body, home.ProveCall), use_token)
                if op == "treatment":
                    return home.treatment_check(session, origin, _body(body, home.TreatmentCall))
                if op == "status":
                    return care.status(session, origin, str(body.get("msg_key", "")))
                raise InputError(f"unknown federation call '{op[:20]}'")
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# -- national-interface transactions meeting a person insured in another province ------------------------------------

def _person_lookup(federation: Federation, link: care.Link, original: Callable[..., Any]) -> Callable[..., Any]:
    """1101 for a person insured in another province (the envelope's insuplc_admdvs): their home answers it and this
    node keeps a copy of the person to register their visits."""

    def handler(ctx: Context, query: Any) -> Any:
        region = ctx.envelope.insuplc_admdvs.strip()
        if federation.is_home(region):
            try:
                return original(ctx, query)
            except NotFound as error:
                text = error.message.removeprefix(f"{error.field}: ") if error.field else error.message
                raise NotFound(f"{text}; a person insured in another province: send their insuplc_admdvs",
                               field=error.field) from None
        reply = link.call(region, "person", {"fixmedins_code": ctx.fixmedins_code, "query": query.data})
        care.keep_guest(ctx.session, reply, region, federation)
        return reply["answer"]

    return handler


def _proven_by_home(federation: Federation, link: care.Link, original: Callable[..., Any], part: str) -> Callable[..., Any]:
    """2201/2401/2101/2102 for a person insured in another province: their home checks the credential (an ecToken is
    its to spend) and refreshes this node's copy; then the visit is registered here as any other."""

    def handler(ctx: Context, body: Any) -> Any:
        region = ctx.envelope.insuplc_admdvs.strip()
        if not federation.is_home(region):
            data = getattr(body, part)
            reply = link.call(region, "prove", {"psn_no": data.psn_no, "cert_type": data.mdtrt_cert_type, "cert_no": data.mdtrt_cert_no,
                                                "card_sn": data.card_sn, "fixmedins_code": ctx.fixmedins_code})
            care.keep_guest(ctx.session, reply, region, federation, data.psn_no)
            care.proven(ctx.session, data.psn_no, data.mdtrt_cert_type, data.mdtrt_cert_no)
        return original(ctx, body)

    return handler


def _treatment_at_home(federation: Federation, link: care.Link, original: Callable[..., Any]) -> Callable[..., Any]:
    """2001 for a person insured in another province: their home checks enrolment, contributions, registrations and
    the filing for care in this node's province; the stays open here are this node's to add."""

    def handler(ctx: Context, body: Any) -> Any:
        region = ctx.envelope.insuplc_admdvs.strip()
        if federation.is_home(region):
            return original(ctx, body)
        d = body.data
        begin = clock.parse_datetime(d.begntime, "input.data.begntime")
        end = clock.parse_datetime(d.endtime, "input.data.endtime") if d.endtime.strip() else None
        code = (d.fixmedins_code or ctx.fixmedins_code).strip()
        institution = ctx.session.get(Institution, code)
        if institution is None:
            raise NotFound(f"{code[:30]} is not a designated institution", field="input.data.fixmedins_code")
        place = institution.admdvs
        found = link.call(region, "treatment", {"psn_no": d.psn_no, "insutype": d.insutype, "place": place, "med_type": d.med_type,
                                                "day": begin.date(), "dise_codg": d.dise_codg})
        findings = [treatment.Finding(f["code"], bool(f["enjoyed"]), str(f["message"])) for f in found]
        stays = ctx.session.execute(select(Visit.mdtrt_id, Visit.fixmedins_code).where(
            Visit.psn_no == d.psn_no, Visit.kind == "inpatient", Visit.status == "admitted")).tuples()
        findings += [treatment.Finding("41", False, f"在{where}住院未出院（就诊ID {mdtrt_id}），请先办理出院") for mdtrt_id, where in stays]
        return {"trtinfo": treatment.trtinfo(d.psn_no, d.insutype, begin, end, findings)}

    return handler


def federate(table: dict[str, Transaction], federation: Federation, link: care.Link) -> dict[str, Transaction]:
    """The transaction table of a federation node: the person's home is asked where it must be."""
    wrapped = dict(table)
    if "2001" in table:
        wrapped["2001"] = dataclasses.replace(table["2001"], handler=_treatment_at_home(federation, link, table["2001"].handler))
    if "1101" in table:
        wrapped["1101"] = dataclasses.replace(table["1101"], handler=_person_lookup(federation, link, table["1101"].handler))
    for infno, part in (("2201", "data"), ("2401", "mdtrtinfo"), ("2101", "data"), ("2102", "data")):
        if infno in table:
            wrapped[infno] = dataclasses.replace(table[infno], handler=_proven_by_home(federation, link, table[infno].handler, part))
    return wrapped
