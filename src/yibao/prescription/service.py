"""E-prescription circulation (电子处方流转): the prescription centre's rules.

The prescribing hospital pre-checks a prescription (7101: catalogue, insurance, a chronic renewal's registration),
signs its canonical form with its registered SM2 key and has the platform counter-sign it (7102), and puts it into
circulation (7103); it may revoke it until it is dispensed (7104) and query it (7105). The person sees it in the app
and chooses where it is dispensed and whether it is delivered. The pharmacy reaches it with the person's code (7201)
or credential (7202), downloads it (7203), has its pharmacist review it (7204), settles it with insurance (2101–2103 or
2201–2208 med_type 41: the fee lines name it as ``rxno``), reports delivery (7205) and writes it off (7206).

A prescription is dispensed once: the settlement that names it claims it with a conditional update in its own
transaction (two counters racing: one wins, the other is refused and rolls back whole). Reversing that settlement
gives it back (dispensable again until it expires). Encounter asks this module (it sits below encounter); this module
reads visits only through the lookup encounter installs (`use_visits`), never by importing it.

The canonical form that is signed (docs/prescriptions.md): the 7101 input restricted to the fields the interface lists
(``data``, ``rxdrugdetail[]``, ``mdtrtinfo``, ``diseinfo[]``), every value as text (a number as its JSON text; absent or
null as ""), the three signature fields (``dr_sign_info``, ``phar_sign_info``, ``fixmedins_sign_info``) left out, the
platform's ``hi_rxno`` added at the top; JSON with keys sorted, no spaces, UTF-8 (not ASCII-escaped). ``sign_digest`` is
the lowercase hex SM3 of those bytes; the hospital and the platform each SM2-sign the 64 ASCII characters of the digest.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.chronic import service as chronic
from yibao.codes.models import CatalogItem
from yibao.core import clock, sm2
from yibao.core.crypto import sm3_hex
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.prescription.models import PlatformKey, Prescription, PrescriptionKey
from yibao.registry import service as registry
from yibao.registry.models import Institution

SIGN_FIELDS = ("dr_sign_info", "phar_sign_info", "fixmedins_sign_info")
PLATFORM_KEY_ID = 1
ACCESS_TTL = timedelta(hours=2)
# states as the interface answers them (7103/7104/7105) and as the app shows them
RX_STAS = {"prechecked": ("0", "待上传"), "signed": ("0", "待上传"), "uploaded": ("1", "有效"), "dispensed": ("1", "有效"),
           "revoked": ("2", "已撤销"), "expired": ("3", "已失效")}
SHOWN = {"prechecked": "待开具", "signed": "待开具", "uploaded": "待取药", "dispensed": "已取药", "revoked": "已撤销",
         "expired": "已过期", "written_off": "已核销"}
MODES = {"1": "到店自取", "2": "配送到家"}
PASSED = "1"  # rx_chk_stas_codg: 1 审核通过 (anything else: not passed)


class VisitLookup:
    """What this module may know of a visit (installed by encounter): (fixmedins_code, psn_no, med_type, status)."""

    find: Callable[[Session, str], tuple[str, str, str, str] | None] | None = None


def use_visits(find: Callable[[Session, str], tuple[str, str, str, str] | None]) -> None:
    VisitLookup.find = find


# -- keys ---------------------------------------------------------------------------------------------------------------

def institution_key(session: Session, fixmedins_code: str) -> str | None:
    row = session.get(PrescriptionKey, fixmedins_code)
    return row.public_key if row is not None else None


def set_institution_key(session: Session, fixmedins_code: str, public_pem: str) -> None:
    """Register (or replace) the SM2 public key an institution signs prescriptions with."""
    if session.get(Institution, fixmedins_code) is None:
        raise NotFound(f"institution {fixmedins_code} is not registered", field="fixmedins_code")
    try:
        sm2.check_public_key(public_pem.strip() + "\n")
    except sm2.SM2KeyError:
        raise InputError("is not an SM2 public key (PEM, SubjectPublicKeyInfo)", field="public_key") from None
    row = session.get(PrescriptionKey, fixmedins_code)
    if row is None:
        session.add(PrescriptionKey(fixmedins_code=fixmedins_code, public_key=public_pem.strip() + "\n", registered_at=clock.now(),
                                    demo_private_key=None))
    else:
        # a demo hospital's generated pair no longer holds once another key is registered
        row.public_key, row.registered_at, row.demo_private_key = public_pem.strip() + "\n", clock.now(), None


def demo_keys(codes: list[str]) -> list[dict[str, Any]]:
    """Rows of `prescription_key` for demo hospitals: a fresh random pair each, the private half kept (sealed) for the
    demo's HIS."""
    rows = []
    for code in codes:
        private_pem, public_pem = sm2.generate_keypair()
        rows.append({"fixmedins_code": code, "public_key": public_pem, "registered_at": clock.now(), "demo_private_key": private_pem})
    return rows


def platform_key(session: Session) -> tuple[str, str]:
    """The platform's SM2 key pair (private PEM, public PEM), created at first need; the private half is sealed at rest."""
    row = session.get(PlatformKey, PLATFORM_KEY_ID)
    if row is None:
        private_pem, public_pem = sm2.generate_keypair()
        savepoint = session.begin_nested()
        try:
            session.add(PlatformKey(id=PLATFORM_KEY_ID, private_key=private_pem, public_key=public_pem, created_at=clock.now()))
            session.flush()
            savepoint.commit()
        except IntegrityError:  # another call created it first
            savepoint.rollback()
        row = session.get(PlatformKey, PLATFORM_KEY_ID)
        assert row is not None
    return row.private_key, row.public_key


def key_serial(public_pem: str) -> str:
    """The platform key's serial as 7102 answers it (sign_cert_sn): the first 32 hex digits of the SM3 of its PEM."""
    return sm3_hex(public_pem.encode("ascii"))[:32]


# -- the canonical form -------------------------------------------------------------------------------------------------

def canonical(hi_rxno: str, document: dict[str, Any]) -> bytes:
    """The bytes that are signed (see the module's docstring): sorted keys, no spaces, UTF-8."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in SIGN_FIELDS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return "" if value is None else str(value)

    return json.dumps({"hi_rxno": hi_rxno, **strip(document)}, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def digest_of(hi_rxno: str, document: dict[str, Any]) -> str:
    return sm3_hex(canonical(hi_rxno, document))


# -- 7101 pre-check -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Draft:
    """7101's input, parsed: the document as the interface lists it (for the canonical form) and the facts checked."""

    document: dict[str, Any]
    hosp_rxno: str
    init_rxno: str
    rx_type_code: str
    rx_cotn_flag: str
    rx_circ_flag: str
    prsc_time: datetime
    valid_days: int
    valid_end_time: datetime | None
    mdtrt_id: str
    med_type: str
    psn_no: str
    patn_name: str
    insutype: str
    insuplc_admdvs: str
    dise_codg: str
    diag_code: str
    diag_name: str
    prsc_dept_name: str
    prsc_dr_name: str
    drugs: Sequence[tuple[str, str]]  # (med_list_codg, dise_codg) a line


def _serial(admdvs: str) -> str:
    return f"{admdvs}{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**10):010d}"


def precheck(session: Session, draft: Draft, *, fixmedins_code: str, admdvs: str, max_valid_days: int) -> Prescription:
    """7101: check the prescription against the catalogue (every drug known and valid today), the person's insurance
    (enrolled and insured under insutype, in the region named) and, for a chronic renewal (med_type 14), the person's
    registration of the disease; keep it as pre-checked and answer its hi_rxno."""
    now = clock.now()
    inst = session.get(Institution, fixmedins_code)
    if inst is None or inst.fixmedins_type != "1":
        raise InputError("prescriptions are issued by designated medical institutions (fixmedins_type 1)", field="fixmedins_code")
    person = registry.person(session, draft.psn_no, "input.mdtrtinfo")
    enrolment = registry.active_enrolment(registry.enrolments_of(session, person.psn_no), draft.insutype, now.date(), "input.mdtrtinfo")
    if draft.insuplc_admdvs and draft.insuplc_admdvs != enrolment.insuplc_admdvs:
        raise InputError(f"the person is insured in {enrolment.insuplc_admdvs}", field="input.mdtrtinfo.insuplc_admdvs")
    if draft.patn_name and draft.patn_name != person.psn_name:
        raise InputError("is not the name of psn_no", field="input.mdtrtinfo.patn_name")
    if VisitLookup.find is not None:
        visit = VisitLookup.find(session, draft.mdtrt_id)
        if visit is None or visit[0] != fixmedins_code:
            raise NotFound(f"no visit {draft.mdtrt_id[:30]} at this institution", field="input.mdtrtinfo.mdtrt_id")
        if visit[1] != person.psn_no:
            raise InputError(f"visit {draft.mdtrt_id} belongs to another person", field="input.mdtrtinfo.mdtrt_id")
        if visit[3] == "cancelled":
            raise InputError(f"visit {draft.mdtrt_id} was cancelled", field="input.mdtrtinfo.mdtrt_id")
    if draft.prsc_time > now + timedelta(minutes=10):
        raise InputError(f"{clock.fmt_datetime(draft.prsc_time)} is in the future", field="input.data.prsc_time")
    if draft.rx_circ_flag not in ("0", "1"):
        raise InputError("must be 0 (dispensed here) or 1 (外购: at a pharmacy)", field="input.data.rx_circ_flag")
    if draft.valid_days < 1:
        raise InputError("must be at least 1 day", field="input.data.valid_days")
    days = min(draft.valid_days, max_valid_days)
    end = draft.prsc_time + timedelta(days=days)
    if draft.valid_end_time is not None:
        end = min(end, draft.valid_end_time)
    if end <= now:
        raise InputError(f"the prescription's validity ended at {clock.fmt_datetime(end)}", field="input.data.valid_end_time")
    if not draft.drugs:
        raise InputError("at least one drug is required", field="input.rxdrugdetail")
    today = now.date()
    for i, (code, _) in enumerate(draft.drugs):
        item = session.scalar(select(CatalogItem.med_list_codg).where(
            CatalogItem.med_list_codg == code.strip().upper(), CatalogItem.vali_flag == "1", CatalogItem.begndate <= today,
            (CatalogItem.enddate.is_(None)) | (CatalogItem.enddate >= today)).limit(1))
        if item is None:
            raise InputError(f"'{code[:50]}' is not in the catalogue valid today", field=f"input.rxdrugdetail[{i}].med_list_codg")
    dise = draft.dise_codg.strip().upper()
    if draft.med_type == "14":
        if not dise:
            raise InputError("a chronic renewal (med_type 14) names the registered disease (1309 code)", field="input.mdtrtinfo.dise_codg")
        if chronic.in_force(session, person.psn_no, dise, today) is None:
            raise InputError(f"the person has no registration of {dise[:30]} in force (2503)", field="input.mdtrtinfo.dise_codg")
    same = session.scalar(select(Prescription.hi_rxno).where(Prescription.fixmedins_code == fixmedins_code,
                                                             Prescription.hosp_rxno == draft.hosp_rxno,
                                                             Prescription.status != "revoked").limit(1))
    if same is not None:
        raise Conflict(f"hosp_rxno {draft.hosp_rxno[:40]} was pre-checked as hi_rxno {same}", field="input.data.hosp_rxno")
    hi_rxno = _serial(admdvs)
    row = Prescription(
        hi_rxno=hi_rxno, hosp_rxno=draft.hosp_rxno[:40], init_rxno=draft.init_rxno[:40], fixmedins_code=fixmedins_code,
        fixmedins_name=inst.fixmedins_name, psn_no=person.psn_no, patn_name=person.psn_name, mdtrt_id=draft.mdtrt_id[:30],
        med_type=draft.med_type[:6], insutype=draft.insutype, insuplc_admdvs=enrolment.insuplc_admdvs, dise_codg=dise[:30],
        diag_code=draft.diag_code[:20], diag_name=draft.diag_name[:100], prsc_dept_name=draft.prsc_dept_name[:50],
        prsc_dr_name=draft.prsc_dr_name[:50], rx_type_code=draft.rx_type_code[:3], rx_cotn_flag=draft.rx_cotn_flag[:1],
        rx_circ_flag=draft.rx_circ_flag, prsc_time=draft.prsc_time, valid_days=days, valid_end_time=end,
        document=canonical(hi_rxno, draft.document).decode(), sign_digest=digest_of(hi_rxno, draft.document),
        fixmedins_sign_info="", hi_sign_info="", status="prechecked", epc_qrcd=secrets.token_hex(12).upper() + "EPC",
        chosen_fixmedins_code=fixmedins_code if draft.rx_circ_flag == "0" else None, delivery_mode="", delv_addr="", created_at=now)
    session.add(row)
    return row


def _own(session: Session, hi_rxno: str, fixmedins_code: str, where: str, *, lock: bool = True) -> Prescription:
    row = session.get(Prescription, hi_rxno.strip(), with_for_update=lock)
    if row is None or row.fixmedins_code != fixmedins_code:
        raise NotFound(f"no prescription {hi_rxno[:30]} of this institution", field=f"{where}.hi_rxno")
    return row


def _verify_hospital(session: Session, row: Prescription, signature: str, where: str) -> None:
    key = institution_key(session, row.fixmedins_code)
    if key is None:
        raise InputError("this institution has no SM2 key registered for prescriptions (yibao prescription key set)",
                         field=f"{where}.fixmedins_sign_info")
    if not signature.strip():
        raise InputError("required: the institution's SM2 signature of sign_digest (base64 DER)", field=f"{where}.fixmedins_sign_info")
    if not sm2.verify(key, row.sign_digest.encode("ascii"), signature.strip()):
        raise InputError(f"is not the institution's SM2 signature of sign_digest {row.sign_digest}",
                         field=f"{where}.fixmedins_sign_info")


def _counter_sign(session: Session, row: Prescription, signature: str) -> dict[str, Any]:
    private_pem, public_pem = platform_key(session)
    row.fixmedins_sign_info = signature.strip()
    row.hi_sign_info = sm2.sign(private_pem, row.sign_digest.encode("ascii"))
    row.status = "signed"
    return signed_answer(row, public_pem)


def signed_answer(row: Prescription, public_pem: str) -> dict[str, Any]:
    return {"hi_rxno": row.hi_rxno, "sign_digest": row.sign_digest, "hi_sign_info": row.hi_sign_info,
            "sign_cert_sn": key_serial(public_pem), "sign_cert_dn": "CN=yibao prescription centre"}


@dataclass(frozen=True)
class Review:
    """The hospital pharmacist's review (7102) or the dispensing pharmacist's (7204)."""

    phar_name: str
    rx_chk_stas_codg: str
    rx_chk_time: datetime | None


def sign(session: Session, *, hi_rxno: str, fixmedins_code: str, review: Review, signature: str, digest: str,
         where: str = "input.data") -> dict[str, Any]:
    """7102: the hospital's review passed and its SM2 signature of the canonical form verified, the platform
    counter-signs (医保电子签名) with its own key."""
    row = _own(session, hi_rxno, fixmedins_code, where)
    if row.status not in ("prechecked", "signed"):
        raise Conflict(f"prescription {row.hi_rxno} is {row.status}", field=f"{where}.hi_rxno")
    if review.rx_chk_stas_codg != PASSED:
        raise InputError("the hospital pharmacist's review did not pass (rx_chk_stas_codg 1): not signed",
                         field=f"{where}.rx_chk_stas_codg")
    if digest.strip() and digest.strip().lower() != row.sign_digest:
        raise InputError(f"is not the SM3 of the canonical form ({row.sign_digest})", field=f"{where}.sign_digest")
    _verify_hospital(session, row, signature, where)
    row.hosp_chk_stas_codg, row.hosp_phar_name = review.rx_chk_stas_codg, review.phar_name[:50]
    return _counter_sign(session, row, signature)


def upload(session: Session, *, hi_rxno: str, fixmedins_code: str, signature: str, where: str = "input.data") -> Prescription:
    """7103: a signed prescription goes into circulation. A client that skips 7102 sends the hospital's signature here."""
    row = _own(session, hi_rxno, fixmedins_code, where)
    if row.status == "prechecked":
        _verify_hospital(session, row, signature, where)
        _counter_sign(session, row, signature)
    elif row.status != "signed":
        raise Conflict(f"prescription {row.hi_rxno} is {shown_state(row)}", field=f"{where}.hi_rxno")
    if clock.now() > row.valid_end_time:
        raise InputError(f"the prescription expired at {clock.fmt_datetime(row.valid_end_time)}", field=f"{where}.hi_rxno")
    row.status, row.uploaded_at = "uploaded", clock.now()
    return row


def revoke(session: Session, *, hi_rxno: str, fixmedins_code: str, reason: str, where: str = "input.data") -> Prescription:
    """7104: the prescribing institution withdraws it, until it is dispensed."""
    row = _own(session, hi_rxno, fixmedins_code, where)
    if row.status == "dispensed":
        raise Conflict(f"prescription {row.hi_rxno} was dispensed (setl_id {row.setl_id}): reverse the settlement first",
                       field=f"{where}.hi_rxno")
    if row.status == "revoked":
        raise Conflict(f"prescription {row.hi_rxno} was revoked at {clock.fmt_datetime(row.revoked_at)}", field=f"{where}.hi_rxno")
    row.status, row.revoked_at, row.undo_rea = "revoked", clock.now(), reason[:200]
    row.access_code = None
    return row


def find_for_query(session: Session, fixmedins_code: str, hi_rxno: str, hosp_rxno: str, where: str = "input.data") -> Prescription:
    """7105: the prescribing institution's prescription by hi_rxno (or its own hosp_rxno); a pharmacy that dispensed it
    or holds the person's choice may query it too."""
    row = None
    if hi_rxno.strip():
        row = session.get(Prescription, hi_rxno.strip())
    elif hosp_rxno.strip():
        row = session.scalar(select(Prescription).where(Prescription.fixmedins_code == fixmedins_code,
                                                        Prescription.hosp_rxno == hosp_rxno.strip())
                             .order_by(Prescription.created_at.desc()).limit(1))
    else:
        raise InputError("required field is missing (hi_rxno or hosp_rxno)", field=f"{where}.hi_rxno")
    if row is None or fixmedins_code not in (row.fixmedins_code, row.chosen_fixmedins_code, row.dispensed_by):
        raise NotFound(f"no prescription {(hi_rxno or hosp_rxno)[:40]} for this institution", field=f"{where}.hi_rxno")
    return row


def expired(row: Prescription, now: datetime | None = None) -> bool:
    return row.status in ("prechecked", "signed", "uploaded") and (now or clock.now()) > row.valid_end_time


def shown_state(row: Prescription) -> str:
    if row.status == "dispensed" and row.written_off_at is not None:
        return "written_off"
    return "expired" if expired(row) else row.status


def status_answer(row: Prescription) -> dict[str, Any]:
    """7103/7104/7105's answer: the prescription's state (rx_stas_codg) and its use (rx_used_stas_codg: 0 not yet
    dispensed, 1 dispensed and settled, 2 written off)."""
    state = shown_state(row)
    code, name = RX_STAS["dispensed" if state == "written_off" else state]
    used = "2" if row.written_off_at else ("1" if row.status == "dispensed" else "0")
    return {"hi_rxno": row.hi_rxno, "hosp_rxno": row.hosp_rxno, "rx_stas_codg": code, "rx_stas_name": name, "rx_used_stas_codg": used,
            "rx_used_stas_name": {"0": "未取药", "1": "已取药", "2": "已核销"}[used], "psn_no": row.psn_no, "patn_name": row.patn_name,
            "prsc_time": clock.fmt_datetime(row.prsc_time), "valid_end_time": clock.fmt_datetime(row.valid_end_time),
            "sign_digest": row.sign_digest, "setl_id": row.setl_id or "", "medins_code": row.dispensed_by or "",
            "dispensed_time": clock.fmt_datetime(row.dispensed_at), "delv_stas_codg": row.delv_stas_codg,
            "delv_stas_name": row.delv_stas_name, "rx_pay_status_code": "1" if row.setl_id else "0",
            "pay_time": clock.fmt_datetime(row.dispensed_at)}


# -- the person's choice ------------------------------------------------------------------------------------------------

def prescriptions_of(session: Session, psn_no: str) -> list[Prescription]:
    """The person's prescriptions that reached circulation (pre-checked drafts are the hospital's), newest first."""
    stmt = select(Prescription).where(Prescription.psn_no == psn_no, Prescription.status.not_in(("prechecked", "signed")))
    return list(session.scalars(stmt.order_by(Prescription.created_at.desc()).limit(100)))


def drugs_of(row: Prescription) -> list[dict[str, Any]]:
    return list(json.loads(row.document).get("rxdrugdetail") or [])


def pharmacies(session: Session, admdvs: str) -> list[Institution]:
    return list(session.scalars(select(Institution).where(Institution.fixmedins_type == "2", Institution.vali_flag == "1",
                                                          Institution.admdvs == admdvs).order_by(Institution.fixmedins_code).limit(200)))


def choose(session: Session, psn_no: str, hi_rxno: str, *, fixmedins_code: str, mode: str, addr: str) -> Prescription:
    """The person chooses where the prescription is dispensed (a designated pharmacy; one the prescribing institution
    dispenses itself stays there) and whether it is delivered (to ``addr``). Changeable until a pharmacy downloads it."""
    row = session.get(Prescription, hi_rxno, with_for_update=True)
    if row is None or row.psn_no != psn_no or row.status in ("prechecked", "signed"):
        raise NotFound("没有这张处方", field="hi_rxno")
    if row.status != "uploaded" or expired(row):
        raise Conflict(f"处方{SHOWN[shown_state(row)]}，不能再选择取药方式", field="hi_rxno")
    if mode not in MODES:
        raise InputError("请选择到店自取或配送到家", field="delivery_mode")
    if mode == "2" and len(addr.strip()) < 5:
        raise InputError("请填写配送地址", field="delv_addr")
    if row.rx_circ_flag == "1":
        if row.downloaded_at is not None and row.chosen_fixmedins_code != fixmedins_code:
            raise Conflict("药店已下载处方，不能再更换药店", field="fixmedins_code")
        pharmacy = session.get(Institution, fixmedins_code)
        if pharmacy is None or pharmacy.fixmedins_type != "2" or pharmacy.vali_flag != "1":
            raise InputError("请选择一家定点药店", field="fixmedins_code")
        row.chosen_fixmedins_code = fixmedins_code
    row.delivery_mode, row.delv_addr, row.chosen_at = mode, addr.strip()[:200] if mode == "2" else "", clock.now()
    return row


# -- the pharmacy: 7201–7206 ---------------------------------------------------------------------------------------------

def _dispenser(row: Prescription) -> str | None:
    """Where the prescription may be dispensed: the person's chosen pharmacy, or the prescribing institution itself."""
    return row.chosen_fixmedins_code


def _refusal(row: Prescription, fixmedins_code: str, now: datetime) -> str | None:
    """Why this institution may not dispense the prescription now (None: it may)."""
    if row.status in ("prechecked", "signed"):
        return f"prescription {row.hi_rxno} is not in circulation (7103)"
    if row.status == "revoked":
        return f"prescription {row.hi_rxno} was revoked at {clock.fmt_datetime(row.revoked_at)}"
    if row.status == "dispensed":
        return f"prescription {row.hi_rxno} was already dispensed (setl_id {row.setl_id})"
    if now > row.valid_end_time:
        return f"prescription {row.hi_rxno} expired at {clock.fmt_datetime(row.valid_end_time)}"
    dispenser = _dispenser(row)
    if dispenser is not None and dispenser != fixmedins_code:
        return f"prescription {row.hi_rxno} is to be dispensed by the institution the person chose, not this one"
    return None


def _grant(session: Session, row: Prescription, fixmedins_code: str, code: str, where: str) -> None:
    pharmacy = session.get(Institution, fixmedins_code)
    if row.rx_circ_flag == "1" and (pharmacy is None or pharmacy.fixmedins_type != "2"):
        raise InputError("a circulated prescription (rx_circ_flag 1) is dispensed by a designated pharmacy", field="fixmedins_code")
    why = _refusal(row, fixmedins_code, clock.now())
    if why:
        raise InputError(why, field=where)
    if row.chosen_fixmedins_code is None:
        # the person brought the code or their credential to this pharmacy: that is their choice
        row.chosen_fixmedins_code, row.delivery_mode, row.chosen_at = fixmedins_code, "1", clock.now()
    row.access_code, row.access_fixmedins_code, row.access_expires_at = code, fixmedins_code, clock.now() + ACCESS_TTL


def pickup_by_code(session: Session, epc_qrcd: str, fixmedins_code: str, where: str = "input.data") -> Prescription:
    """7201: the pharmacy scans the code the person's app shows; answered with an epc_token for 7203."""
    row = session.scalar(select(Prescription).where(Prescription.epc_qrcd == epc_qrcd.strip().upper()).with_for_update())
    if row is None:
        raise NotFound("no prescription with this code", field=f"{where}.epc_qrcd")
    _grant(session, row, fixmedins_code, secrets.token_hex(32), f"{where}.epc_qrcd")
    return row


def pickup_by_person(session: Session, psn_no: str, fixmedins_code: str, hi_rxno: str = "", where: str = "input.data") -> Prescription:
    """7202: the person's credential (checked by the caller) finds their prescription for this pharmacy (the newest one
    that may be dispensed here, or the one hi_rxno names); answered with a one-time auth_rxno for 7203."""
    now = clock.now()
    stmt = select(Prescription).where(Prescription.psn_no == psn_no, Prescription.status == "uploaded",
                                      Prescription.valid_end_time >= now)
    if hi_rxno.strip():
        stmt = stmt.where(Prescription.hi_rxno == hi_rxno.strip())
    candidates = [row for row in session.scalars(stmt.order_by(Prescription.created_at.desc()).limit(20))
                  if row.chosen_fixmedins_code in (None, fixmedins_code)]
    if not candidates:
        raise NotFound("the person has no prescription that may be dispensed here", field=f"{where}.mdtrt_cert_no")
    row = session.get(Prescription, candidates[0].hi_rxno, with_for_update=True)
    assert row is not None
    _grant(session, row, fixmedins_code, f"{secrets.randbelow(10**30):030d}", f"{where}.mdtrt_cert_no")
    return row


def download(session: Session, code: str, fixmedins_code: str, where: str = "input") -> Prescription:
    """7203: the prescription whole, for the pharmacy the epc_token or auth_rxno was issued to (an auth_rxno once)."""
    row = session.scalar(select(Prescription).where(Prescription.access_code == code.strip()).with_for_update()) if code.strip() else None
    if row is None or row.access_fixmedins_code != fixmedins_code:
        raise NotFound("no prescription for this epc_token / auth_rxno at this pharmacy", field=f"{where}.epc_token")
    if row.access_expires_at is not None and clock.now() > row.access_expires_at:
        raise InputError("has expired: scan the code again (7201) or read the credential (7202)", field=f"{where}.epc_token")
    why = _refusal(row, fixmedins_code, clock.now())
    if why:
        raise InputError(why, field=f"{where}.epc_token")
    row.downloaded_at = clock.now()
    if len(code.strip()) == 30:  # auth_rxno: one use
        row.access_code = None
    return row


def review(session: Session, hi_rxno: str, fixmedins_code: str, result: Review, where: str = "input.data") -> Prescription:
    """7204: the dispensing pharmacy's pharmacist reviews the downloaded prescription (rx_chk_stas_codg 1: passed)."""
    row = session.get(Prescription, hi_rxno.strip(), with_for_update=True)
    if row is None or row.chosen_fixmedins_code != fixmedins_code or row.downloaded_at is None:
        raise NotFound(f"no prescription {hi_rxno[:30]} downloaded by this pharmacy (7203)", field=f"{where}.hi_rxno")
    why = _refusal(row, fixmedins_code, clock.now())
    if why:
        raise InputError(why, field=f"{where}.hi_rxno")
    row.chk_stas_codg, row.chk_fixmedins_code, row.chk_phar_name = result.rx_chk_stas_codg[:10], fixmedins_code, result.phar_name[:50]
    row.chk_time = result.rx_chk_time or clock.now()
    return row


def deliver(session: Session, hi_rxno: str, fixmedins_code: str, stas_codg: str, stas_name: str, details: dict[str, Any],
            where: str = "input.data") -> Prescription:
    """7205: the dispensing institution reports the delivery's state of a prescription the person chose to have delivered."""
    row = session.get(Prescription, hi_rxno.strip(), with_for_update=True)
    if row is None or fixmedins_code not in (row.chosen_fixmedins_code, row.dispensed_by):
        raise NotFound(f"no prescription {hi_rxno[:30]} dispensed by this institution", field=f"{where}.hi_rxno")
    if row.delivery_mode != "2":
        raise InputError("the person chose to pick it up (到店自取), not delivery", field=f"{where}.hi_rxno")
    if row.status != "dispensed":
        raise InputError(f"prescription {row.hi_rxno} is {shown_state(row)}: deliver what was dispensed and settled",
                         field=f"{where}.hi_rxno")
    row.delv_stas_codg, row.delv_stas_name = stas_codg[:6], stas_name[:20]
    row.delivery = json.dumps(details, ensure_ascii=False, sort_keys=True)[:4000]
    return row


def write_off(session: Session, hi_rxno: str, fixmedins_code: str, setl_id: str, where: str = "input.data") -> Prescription:
    """7206: the dispensing institution confirms the drugs were handed over (核销) for the settlement that dispensed it."""
    row = session.get(Prescription, hi_rxno.strip(), with_for_update=True)
    if row is None or fixmedins_code not in (row.chosen_fixmedins_code, row.dispensed_by):
        raise NotFound(f"no prescription {hi_rxno[:30]} for this institution", field=f"{where}.hi_rxno")
    if row.status != "dispensed" or row.dispensed_by != fixmedins_code:
        raise InputError(f"prescription {row.hi_rxno} is {shown_state(row)}: settle it here first (rxno in the fee lines)",
                         field=f"{where}.hi_rxno")
    if setl_id.strip() and setl_id.strip() != row.setl_id:
        raise InputError(f"prescription {row.hi_rxno} was settled as {row.setl_id}", field=f"{where}.setl_id")
    if row.written_off_at is not None:
        raise Conflict(f"prescription {row.hi_rxno} was written off at {clock.fmt_datetime(row.written_off_at)}",
                       field=f"{where}.hi_rxno")
    row.written_off_at = clock.now()
    return row


# -- what settlement asks (encounter) ------------------------------------------------------------------------------------

def check_line(session: Session, *, rxno: str, rx_circ_flag: str, med_list_codg: str, fixmedins_code: str, at_pharmacy: bool,
               where: str) -> Prescription | None:
    """A fee line naming ``rxno``: None when it names no circulated prescription (the hospital's own number); refused
    (InputError on ``rxno``) when it names one this institution may not dispense now (another's choice, revoked,
    expired, already dispensed, not reviewed by its pharmacist) or a drug the prescription does not hold."""
    number = rxno.strip()
    row = session.get(Prescription, number) if number and len(number) <= 30 else None
    if row is None:
        if at_pharmacy and rx_circ_flag.strip() == "1":
            raise InputError(f"'{number[:30]}' is no circulated prescription: an outside prescription (rx_circ_flag 1) is named by "
                             "its hi_rxno", field=f"{where}.rxno")
        return None
    why = _refusal(row, fixmedins_code, clock.now())
    if why is None and row.chosen_fixmedins_code is None:
        why = f"prescription {row.hi_rxno} has not been downloaded by this pharmacy (7201/7202, 7203)"
    if why is None and row.rx_circ_flag == "1" and (row.chk_fixmedins_code != fixmedins_code or row.chk_stas_codg != PASSED):
        why = f"prescription {row.hi_rxno} has not passed this pharmacy's pharmacist review (7204)"
    if why:
        raise InputError(why, field=f"{where}.rxno")
    codes = {str(d.get("med_list_codg", "")).strip().upper() for d in drugs_of(row)}
    if med_list_codg.strip().upper() not in codes:
        raise InputError(f"{med_list_codg[:50]} is not on prescription {row.hi_rxno}", field=f"{where}.med_list_codg")
    return row


def claim(session: Session, rxnos: set[str], *, fixmedins_code: str, setl_id: str, where: str) -> None:
    """Mark the prescriptions the settlement dispenses, once: a conditional update (status still 'uploaded'), so of two
    settlements racing for one prescription the second finds it dispensed and is refused (its transaction rolls back)."""
    now = clock.now()
    for number in sorted(rxnos):
        row = session.get(Prescription, number)
        if row is None:
            continue
        done = session.execute(update(Prescription).where(Prescription.hi_rxno == number, Prescription.status == "uploaded",
                                                          Prescription.valid_end_time >= now,
                                                          Prescription.chosen_fixmedins_code == fixmedins_code)
                               .values(status="dispensed", setl_id=setl_id, dispensed_by=fixmedins_code, dispensed_at=now)
                               .execution_options(synchronize_session=False))
        if getattr(done, "rowcount", 0) != 1:
            session.expire(row)
            fresh = session.get(Prescription, number, populate_existing=True)
            assert fresh is not None
            raise InputError(_refusal(fresh, fixmedins_code, now) or f"prescription {number} may not be dispensed here",
                             field=f"{where}.rxno")
        session.expire(row)


def release(session: Session, setl_id: str) -> None:
    """The settlement that dispensed prescriptions was reversed: they may be dispensed again (until they expire)."""
    session.execute(update(Prescription).where(Prescription.setl_id == setl_id, Prescription.status == "dispensed")
                    .values(status="uploaded", setl_id=None, dispensed_by=None, dispensed_at=None, written_off_at=None)
                    .execution_options(synchronize_session=False))
