"""The place of care: settling a person insured in another province through the hub (`RemoteHome`), keeping a copy
of that person to register visits, and answering the home's question about a request it reserved."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import Conflict, NotFound
from yibao.encounter import service as encounter
from yibao.encounter.models import Visit
from yibao.encounter.rows import SettlementRow
from yibao.federation import outbox
from yibao.federation.models import RemoteSettlement
from yibao.federation.nodes import Federation
from yibao.federation.protocol import ENCODER, ROUTE_PATH, Unreachable, raise_refusal, sign
from yibao.registry import service as registry
from yibao.registry.models import Enrolment, Person


class Link:
    """Calls to another node through the hub, signed with this node's key. A call that gets no answer in time, or an
    answer the hub could not get, raises `Unreachable`; a refusal by the other node raises it here as the same error."""

    def __init__(self, federation: Federation, transport: httpx.BaseTransport | None = None) -> None:
        self.federation = federation
        self._client = httpx.Client(timeout=httpx.Timeout(federation.timeout_s), transport=transport, follow_redirects=False)

    def call(self, to: str, op: str, body: Any) -> Any:
        payload = ENCODER.encode({"to": to, "op": op, "body": body})
        headers = sign(self.federation.key, self.federation.admdvs, payload)
        try:
            reply = self._client.post(self.federation.hub_url + ROUTE_PATH, content=payload, headers=headers)
        except httpx.TimeoutException:
            raise Unreachable(f"the insured province's platform ({to}) did not answer within {self.federation.timeout_s:g} s: nothing "
                              "was charged here; retry with the same msgid (it completes once)") from None
        except httpx.HTTPError:
            raise Unreachable(f"the national hub cannot be reached for {to}: nothing was charged here; retry with the same msgid"
                              ) from None
        try:
            document = reply.json()
        except ValueError:
            document = {}
        if reply.status_code != 200 or not isinstance(document, dict) or "ok" not in document:
            reason = (document.get("detail") if isinstance(document, dict) else None) or f"HTTP {reply.status_code}"
            raise Unreachable(f"the insured province's platform ({to}) gave no answer ({str(reason)[:80]}): nothing was charged "
                              "here; retry with the same msgid (it completes once)")
        if not document["ok"]:
            raise_refusal(document, to)
        return document.get("answer")


def message_key(fixmedins_code: str, msgid: str, mdtrt_id: str) -> str:
    """A settlement request, as both nodes name it: the counter's msgid within its institution and visit."""
    return f"{fixmedins_code}:{msgid}:{mdtrt_id}"


@dataclasses.dataclass(frozen=True)
class RemoteHome:
    """The home of a person insured in another province: that province's node, through the hub."""

    link: Link
    home: str       # the insured region (its node answers for its province)
    own: str        # this node's region

    def settle(self, session: Session, facts: encounter.CareFacts, *, post: bool, setl_id: str, msgid: str, where: str,
               person: Any = None) -> encounter.HomeAnswer:
        key = message_key(facts.fixmedins_code, msgid, facts.mdtrt_id)
        if post:
            known = session.get(RemoteSettlement, key)
            if known is not None and known.state == "abandoned":
                raise Conflict("this msgid's cross-province settlement was abandoned (no retry came in time) and released at the "
                               "insured province: settle again with a new msgid", field="msgid")
        answer = self.link.call(self.home, "settle", {"key": key, "setl_id": setl_id, "post": post, "facts": facts})
        found = msgspec.convert(answer, encounter.HomeAnswer, strict=False)
        return dataclasses.replace(found, paid_by=self.home, posting=None)

    def settled(self, session: Session, row: SettlementRow) -> None:
        if row.refd_setl_flag == "0":
            key = message_key(row.fixmedins_code, row.medins_setl_id, row.mdtrt_id)
            session.add(RemoteSettlement(msg_key=key, setl_id=row.setl_id, home_admdvs=self.home, state="settled", created_at=clock.now()))
            outbox.confirmation(session, self.home[:2], key, row.setl_id)
        outbox.clearing(session, side="care", setl_id=row.setl_id, home=self.home, care=self.own,
                        amount_fen=encounter.home_share(row), setl_time=row.setl_time)
        session.flush()

    def reverse(self, session: Session, original: SettlementRow, reversal_id: str, msgid: str, where: str) -> tuple[int, str]:
        answer = self.link.call(self.home, "reverse", {"setl_id": original.setl_id, "reversal_id": reversal_id})
        if not isinstance(answer, dict):
            return 0, reversal_id
        return int(answer.get("balc", 0)), str(answer.get("reversal_id") or reversal_id)


def homes(federation: Federation, link: Link, local: encounter.Home) -> Callable[[str], encounter.Home]:
    """insured region → its home: this node for its own province, the province's node through the hub otherwise."""
    remote: dict[str, RemoteHome] = {}

    def home_of(region: str) -> encounter.Home:
        if federation.is_home(region):
            return local
        if region not in remote:
            remote[region] = RemoteHome(link, region, federation.admdvs)
        return remote[region]

    return home_of


def status(session: Session, origin: str, key: str) -> dict[str, Any]:
    """The home asks what became of a request it reserved: settled here, or never (a tombstone now makes sure it never
    will, so the home may release it). One of the two rows wins the key. Only the visit's home may ask."""
    visit = session.get(Visit, key.rsplit(":", 1)[-1])
    if visit is None or visit.insuplc_admdvs[:2] != origin[:2]:
        raise NotFound("no visit here of a person insured in the calling node's province", field="msg_key")
    found = session.get(RemoteSettlement, key, with_for_update=True)
    if found is None:
        try:
            with session.begin_nested():
                session.add(RemoteSettlement(msg_key=key, setl_id=None, home_admdvs="", state="abandoned", created_at=clock.now()))
        except IntegrityError:
            found = session.get(RemoteSettlement, key, with_for_update=True, populate_existing=True)
        else:
            return {"state": "abandoned"}
    assert found is not None
    return {"state": found.state, "setl_id": found.setl_id}


def keep_guest(session: Session, copy: dict[str, Any], home: str, federation: Federation, psn_no_asked: str = "") -> str:
    """Keep (or refresh) the copy of a person insured elsewhere that visits here need: their record and enrolments.
    Only the person asked about, only enrolments in the answering node's province, never over one of this node's own."""
    data = copy["person"]
    psn_no = str(data["psn_no"])
    if psn_no_asked and psn_no != psn_no_asked:
        raise Conflict(f"the insured province answered for another person than {psn_no_asked[:30]}", field="input.data.psn_no")
    if any(str(e.get("insuplc_admdvs", ""))[:2] != home[:2] for e in copy.get("enrolments", [])):
        raise Conflict(f"the node of {home} answered with an enrolment outside its province", field="insuplc_admdvs")
    person = session.get(Person, psn_no)
    if person is not None and not is_guest(session, psn_no, federation):
        raise Conflict(f"{psn_no} is insured at this node: its record is not another province's to change", field="input.data.psn_no")
    values = {k: v for k, v in data.items() if k != "psn_no"}
    values["brdy"] = clock.parse_date(str(values["brdy"]), "brdy") if isinstance(values.get("brdy"), str) else values.get("brdy")
    if person is None:
        session.add(Person(psn_no=psn_no, **values))
    else:
        for name, value in values.items():
            setattr(person, name, value)
    session.flush()
    fields = ("insutype", "psn_type", "psn_insu_stas", "psn_insu_date", "paus_insu_date", "insuplc_admdvs", "cvlserv_flag")
    sent = [{**e, **{k: (clock.parse_date(str(e[k]), k) if e.get(k) else None) for k in ("psn_insu_date", "paus_insu_date")}}
            for e in copy.get("enrolments", [])]
    kept = session.scalars(select(Enrolment).where(Enrolment.psn_no == psn_no)).all()
    if sorted(tuple(str(e[k]) for k in fields) for e in sent) == sorted(tuple(str(getattr(e, k)) for k in fields) for e in kept):
        return psn_no  # the copy is current: a visit's every call need not rewrite it
    session.execute(delete(Enrolment).where(Enrolment.psn_no == psn_no))
    for e in sent:
        session.add(Enrolment(psn_no=psn_no, emp_no=None, **{k: e[k] for k in fields}))
    session.flush()
    return psn_no


def is_guest(session: Session, psn_no: str, federation: Federation) -> bool:
    regions = session.scalars(select(Enrolment.insuplc_admdvs).where(Enrolment.psn_no == psn_no)).all()
    return bool(regions) and all(not federation.is_home(r) for r in regions)


def proven(session: Session, psn_no: str, cert_type: str, cert_no: str) -> None:
    """The home checked this credential in this call: the registry's own check takes its word (registry.PROVEN_BY_HOME)."""
    session.info[registry.PROVEN_BY_HOME] = (psn_no, cert_type, cert_no.strip())
