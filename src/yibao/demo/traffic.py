"""Random counter traffic through the real gateway: outpatient visits, admissions, pharmacy purchases, reversals.

Used by `yibao simulate`, the ledger tests and the benchmarks. Deterministic for a seed.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.client import CounterClient
from yibao.codes.models import CatalogItem
from yibao.core import clock
from yibao.registry.models import Enrolment, Institution, Person


@dataclass
class TrafficReport:
    outpatient: int = 0
    inpatient: int = 0
    pharmacy: int = 0
    reversals: int = 0
    refused: int = 0
    settled_fen: int = 0
    errors: list[str] = field(default_factory=list)
    # every refusal's err_msg, counted: why calls were refused, not only that they were
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Candidate:
    psn_no: str
    certno: str
    insutype: str
    admdvs: str


def candidates(session: Session, limit: int, rng: random.Random) -> list[Candidate]:
    rows = session.execute(select(Person.psn_no, Person.certno, Enrolment.insutype, Enrolment.insuplc_admdvs)
                           .join(Enrolment, Enrolment.psn_no == Person.psn_no)
                           .where(Enrolment.insutype.in_(("310", "390")), Enrolment.psn_insu_stas == "1")
                           .order_by(Person.psn_no).limit(limit)).all()
    return [Candidate(*r) for r in rows]


def catalogue(session: Session) -> list[tuple[str, str, int]]:
    """(code, rx_flag, price cap or a plausible price in fen) of the catalogue in force."""
    out = []
    for code, rx, cap in session.execute(select(CatalogItem.med_list_codg, CatalogItem.rx_flag, CatalogItem.pric_uplmt_fen)
                                         .where(CatalogItem.enddate.is_(None))):
        out.append((code, rx, cap or 5000))
    return out


def run(clients: dict[str, CounterClient], people: list[Candidate], items: list[tuple[str, str, int]], visits: int, seed: int,
        progress: Callable[[int], None] | None = None) -> TrafficReport:
    """``clients``: signed-in counters by fixmedins_code (hospitals start with H, pharmacies with P)."""
    rng = random.Random(seed)
    report = TrafficReport()
    settled: list[tuple[CounterClient, str, str, str, str]] = []  # (counter, reversal infno, setl_id, mdtrt_id, psn_no)
    # visit numbers must be new on every run against the same database
    run_id = f"{int(time.time() * 1000) % 10**9:09d}"
    hospitals = [c for code, c in clients.items() if code.startswith("H")]
    pharmacies = [c for code, c in clients.items() if code.startswith("P")]
    serial = 0

    def call(client: CounterClient, infno: str, body: dict[str, Any]) -> dict[str, Any] | None:
        answer = client.call(infno, body)
        if answer.get("infcode") != 0:
            report.refused += 1
            report.reasons[f"{infno}: {answer.get('err_msg')}"] += 1
            if len(report.errors) < 20:
                report.errors.append(f"{infno}: {answer.get('err_msg')}")
            return None
        return answer["output"]

    def lines(mdtrt_id: str, person: Candidate, n: int, pharmacy: bool) -> tuple[list[dict[str, Any]], Decimal]:
        nonlocal serial
        out, total = [], Decimal(0)
        for _ in range(n):
            code, rx, cap = rng.choice(items)
            cnt = rng.choice((1, 1, 2, 3))
            pric = (Decimal(rng.randint(cap // 2, cap * 11 // 10 + 1)) / 100).quantize(Decimal("0.01"))
            amount = pric * cnt
            serial += 1
            out.append({"feedetl_sn": f"S{serial}", "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "chrg_bchno": "B1",
                        "med_list_codg": code, "fee_ocur_time": clock.fmt_datetime(clock.now()), "det_item_fee_sumamt": amount,
                        "cnt": cnt, "pric": pric, "rxno": f"RX{serial}" if (rx == "1" and (not pharmacy or rng.random() < 0.95)) else ""})
            total += amount
        return out, total

    for _ in range(visits):
        person = rng.choice(people)
        roll = rng.random()
        cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno}
        acct = rng.choice(("0", "1", "1"))
        if settled and roll < 0.05:
            client, infno, setl_id, mdtrt_id, psn_no = settled.pop(rng.randrange(len(settled)))
            out = call(client, infno, {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}})
            report.reversals += out is not None
        elif roll < 0.15 and pharmacies:
            client = rng.choice(pharmacies)
            serial += 1
            drug_lines, total = lines("", person, rng.randint(1, 4), True)
            out = call(client, "2102", {"data": {"psn_no": person.psn_no, "insutype": person.insutype, **cert, "medfee_sumamt": total,
                                                 "acct_used_flag": acct, "ipt_otp_no": f"YD{run_id}{serial}"},
                                        "drugdetail": [{k: v for k, v in x.items() if k not in ("mdtrt_id", "psn_no")}
                                                       for x in drug_lines]})
            if out:
                report.pharmacy += 1
                report.settled_fen += int(total * 100)
                settled.append((client, "2103", out["setlinfo"]["setl_id"], out["setlinfo"]["mdtrt_id"], person.psn_no))
        elif roll < 0.25:
            client = rng.choice(hospitals)
            serial += 1
            adm = call(client, "2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": person.insutype, **cert, "med_type": "21",
                                                      "ipt_no": f"ZY{run_id}{serial}", "begntime": clock.fmt_datetime(clock.now())}})
            if not adm:
                continue
            mdtrt_id = adm["result"]["mdtrt_id"]
            fee_lines, total = lines(mdtrt_id, person, rng.randint(3, 10), False)
            if not call(client, "2301", {"feedetail": fee_lines}):
                call(client, "2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}})
                continue
            call(client, "2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now())}})
            out = call(client, "2304", {"data": {"psn_no": person.psn_no, **cert, "medfee_sumamt": total, "mdtrt_id": mdtrt_id,
                                                 "insutype": person.insutype, "acct_used_flag": acct, "psn_setlway": "01"}})
            if out:
                report.inpatient += 1
                report.settled_fen += int(total * 100)
                settled.append((client, "2305", out["setlinfo"]["setl_id"], mdtrt_id, person.psn_no))
        else:
            client = rng.choice(hospitals)
            serial += 1
            reg = call(client, "2201", {"data": {"psn_no": person.psn_no, "insutype": person.insutype,
                                                 "begntime": clock.fmt_datetime(clock.now()), **cert, "ipt_otp_no": f"MZ{run_id}{serial}",
                                                 "med_type": "11"}})
            if not reg:
                continue
            mdtrt_id = reg["data"]["mdtrt_id"]
            fee_lines, total = lines(mdtrt_id, person, rng.randint(1, 5), False)
            if not call(client, "2204", {"feedetail": fee_lines}):
                continue
            out = call(client, "2207", {"data": {"psn_no": person.psn_no, **cert, "med_type": "11", "medfee_sumamt": total,
                                                 "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": acct,
                                                 "insutype": person.insutype}})
            if out:
                report.outpatient += 1
                report.settled_fen += int(total * 100)
                settled.append((client, "2208", out["setlinfo"]["setl_id"], mdtrt_id, person.psn_no))
        if progress:
            progress(1)
    return report


def institutions(session: Session, admdvs: str | None = None) -> list[str]:
    stmt = select(Institution.fixmedins_code).order_by(Institution.fixmedins_code)
    if admdvs:
        stmt = stmt.where(Institution.admdvs == admdvs)
    return list(session.scalars(stmt))
