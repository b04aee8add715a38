"""Generate a synthetic insured population from a seed.

The same seed and reference date give the same region, byte for byte: people in households,
GB 11643-valid ID numbers, social-security cards, enrolments by age and employment,
identities, personal accounts whose balance equals the opening balance plus a year of
monthly credits, institutions of each level and kind with departments, doctors, operators
and gateway keys. Rows go in with batched Core inserts so a million people take minutes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from yibao import bootstrap
from yibao.chronic.models import ChronicRegistration
from yibao.codes import importer
from yibao.core import clock, crypto, idcard
from yibao.credential.models import Channel
from yibao.credit import service as credit
from yibao.demo import names
from yibao.deployment import service as deployment
from yibao.gateway.models import GatewayClient
from yibao.ledger.models import MutualAidGrant
from yibao.prescription import service as prescription
from yibao.prescription.models import PrescriptionKey
from yibao.registry.models import (
    Account,
    Contribution,
    Department,
    Doctor,
    Employer,
    Enrolment,
    Household,
    Identity,
    Institution,
    Operator,
    Person,
)


@dataclass(frozen=True)
class DemoRegion:
    admdvs: str
    name: str
    prov_admdvs: str
    districts: tuple[str, ...]
    card_letter: str


REGIONS = (
    DemoRegion("370100", "济南市", "370000", ("370102", "370103", "370104", "370105", "370112", "370113"), "J"),
    DemoRegion("440300", "深圳市", "440000", ("440303", "440304", "440305", "440306", "440307", "440309"), "S"),
)
BATCH = 5000
# People's birthdays and enrolment dates are drawn relative to this fixed day, so a seed gives the
# same people (the same ID numbers) whenever it runs; only the contribution months follow `on`.
ANCHOR = date(2026, 1, 1)


@dataclass
class DemoReport:
    people: int = 0
    households: int = 0
    institutions: int = 0
    enrolments: int = 0
    contributions: int = 0
    accounts: int = 0
    catalogue_rows: int = 0
    chronic_registrations: int = 0
    sample: dict[str, Any] = field(default_factory=dict)


CHANNELS = (
    ("NHSA_WEB", "国家医保服务平台(网页版)", "platform_web"),
    ("NHSA_APP", "国家医保服务平台APP", "national_app"),
    ("SDYB_APP", "山东医保APP", "local_app"),
    ("SZYB_APP", "深圳医保APP", "local_app"),
    ("WECHAT", "微信", "wechat"),
    ("ALIPAY", "支付宝", "alipay"),
    ("ICBC", "中国工商银行", "bank"),
    ("CCB", "中国建设银行", "bank"),
)


def _name(rng: random.Random, gend: str) -> str:
    given = names.GIVEN_MALE if gend == "1" else names.GIVEN_FEMALE
    return rng.choice(names.SURNAMES) + "".join(rng.choice(given) for _ in range(rng.choice((1, 2, 2))))


def _birth(rng: random.Random, on: date, age: int) -> date:
    return on - timedelta(days=age * 365 + rng.randrange(365))


def seed_reference_data(session: Session, seed: int) -> list[str]:
    """Regions, code tables, the demo catalogue; returns the catalogue version."""
    bootstrap.seed_reference(session)
    session.execute(insert(Channel), [{"chnl_id": c, "chnl_name": n, "kind": k, "secret": crypto.new_secret(), "active": True}
                                      for c, n, k in CHANNELS if c != bootstrap.PLATFORM_WEB[0]])
    data = resources.files("yibao.codes.data")
    rows = list(importer.rows_from_text(data.joinpath("demo_catalog.csv").read_text(encoding="utf-8")))
    good, rejected, _count = importer.validate(rows)
    if rejected:
        raise RuntimeError(f"demo catalogue has bad rows: {rejected[:3]}")
    cat_version = importer.new_version(session, "demo catalogue", "yibao/codes/data/demo_catalog.csv")
    importer.apply(session, good, cat_version)
    importer.import_diseases(session, importer.rows_from_text(data.joinpath("demo_diseases.csv").read_text(encoding="utf-8")),
                             cat_version.ver)
    return [cat_version.ver, str(len(good))]


def seed_institutions(session: Session, rng: random.Random, seed: int, per_kind: int, regions: tuple[DemoRegion, ...] = REGIONS
                      ) -> int:
    now = clock.now()
    count = 0
    for region in regions:
        city = region.name.removesuffix("市")
        rows: list[dict[str, Any]] = []
        n = 0
        for level in (3, 2, 1):
            for i in range(per_kind):
                n += 1
                name = {3: f"{city}市第{i + 1}人民医院", 2: f"{city}市{rng.choice(('中心', '中医', '妇幼', '人民'))}医院第{i + 1}分院",
                        1: f"{city}市社区卫生服务中心{i + 1}"}[level]
                rows.append({"fixmedins_code": f"H{region.admdvs}{n:05d}", "fixmedins_name": name, "fixmedins_type": "1",
                             "medins_lv": level, "admdvs": region.admdvs, "addr": f"{region.name}{rng.choice(region.districts)}"})
        for i in range(per_kind):
            n += 1
            rows.append({"fixmedins_code": f"P{region.admdvs}{n:05d}",
                         "fixmedins_name": f"{rng.choice(names.PHARMACY_BRANDS)}大药房{city}第{i + 1}店",
                         "fixmedins_type": "2", "medins_lv": None, "admdvs": region.admdvs, "addr": region.name})
        session.execute(insert(Institution), rows)
        departments: list[dict[str, Any]] = []
        doctors: list[dict[str, Any]] = []
        operators: list[dict[str, Any]] = []
        clients: list[dict[str, Any]] = []
        for inst in rows:
            code = inst["fixmedins_code"]
            if inst["fixmedins_type"] == "1":
                for dept_code, dept_name in rng.sample(names.DEPARTMENTS, 5 if inst["medins_lv"] > 1 else 3):
                    departments.append({"fixmedins_code": code, "dept_codg": dept_code, "dept_name": dept_name})
                    for _ in range(2):
                        gend = rng.choice("12")
                        doctors.append({"dr_codg": f"D{code[1:7]}{len(doctors) + 1:05d}", "dr_name": _name(rng, gend),
                                        "fixmedins_code": code, "dept_codg": dept_code, "pro_title": rng.choice(names.TITLES)})
            for k in (1, 2):
                operators.append({"fixmedins_code": code, "opter_no": f"{k:04d}", "opter_name": _name(rng, rng.choice("12")),
                                  "active": True})
            # random, never derived from the public seed: `yibao keys show` prints them on request
            clients.append({"access_key": code, "fixmedins_code": code, "secret": crypto.new_secret(), "active": True, "created_at": now,
                            "schemes": "yibao,csb,tif"})
        session.execute(insert(Department), departments)
        # doctor codes must be unique across the region's institutions
        session.execute(insert(Doctor), doctors)
        session.execute(insert(Operator), operators)
        session.execute(insert(GatewayClient), clients)
        # each demo hospital's SM2 key for e-prescriptions (random; `yibao prescription key-show` prints it in demo mode)
        session.execute(insert(PrescriptionKey), prescription.demo_keys([r["fixmedins_code"] for r in rows if r["fixmedins_type"] == "1"]))
        count += len(rows)
    return count


def _households(rng: random.Random, on: date) -> Iterator[list[tuple[str, int, str]]]:
    """Endless households as lists of (relation, age, gend)."""
    while True:
        size = rng.choices((1, 2, 3, 4, 5), weights=(20, 30, 30, 15, 5))[0]
        head_age = rng.randint(22, 80) if size < 3 else rng.randint(28, 55)
        head_gend = rng.choice("12")
        members = [("01", head_age, head_gend)]
        if size >= 2:
            members.append(("02", max(20, head_age + rng.randint(-5, 5)), "2" if head_gend == "1" else "1"))
        for _ in range(min(size - 2, 2)):
            members.append(("03", max(0, head_age - rng.randint(22, 35)), rng.choice("12")))
        if size == 5:
            members.append(("04", min(99, head_age + rng.randint(24, 32)), rng.choice("12")))
        yield members


# Chronic and special diseases registered for older people (2503): (1309 code, chance per person aged 45 or more). Every
# code is one both demo regions' policies pay (policy/data/*/chronic.yaml).
CHRONIC = (("M03900", 0.08), ("M01600", 0.05), ("M04600", 0.02), ("M05300", 0.01), ("M00503", 0.004), ("M07803", 0.002))
CHRONIC_NAMES = {"M03900": "高血压病", "M01600": "糖尿病", "M04600": "冠心病", "M05300": "慢性阻塞性肺疾病",
                 "M00503": "恶性肿瘤放、化、介入或核素治疗", "M07803": "慢性肾功能不全（血透治疗）"}


def _retired(age: int, gend: str) -> bool:
    return age >= (60 if gend == "1" else 55)


def generate_people(session: Session, rng: random.Random, people: int, on: date,
                    progress: Callable[[int], None] | None = None, commit_batches: bool = False,
                    chronic_rng: random.Random | None = None, regions: tuple[DemoRegion, ...] = REGIONS) -> DemoReport:
    report = DemoReport()
    # registrations draw from their own stream, so the people (and their ID numbers) are those of earlier versions
    chronic_rng = chronic_rng or random.Random("chronic")
    employers: dict[str, list[str]] = {}
    for region in regions:
        rows = [{"emp_no": f"E{region.admdvs}{i:06d}", "emp_name": f"{region.name.removesuffix('市')}{rng.choice(names.COMPANY_WORDS)}"
                 f"{rng.choice(names.COMPANY_KINDS)}{i}", "admdvs": region.admdvs} for i in range(1, 201)]
        session.execute(insert(Employer), rows)
        employers[region.admdvs] = [r["emp_no"] for r in rows]

    months = [(on.replace(day=1) - timedelta(days=1)).replace(day=1)]
    for _ in range(11):
        months.append((months[-1] - timedelta(days=1)).replace(day=1))
    months.reverse()
    used_certnos: set[str] = set()
    buffers: dict[type, list[dict[str, Any]]] = {Household: [], Person: [], Enrolment: [], Identity: [], Account: [], Contribution: [],
                                                 MutualAidGrant: [], ChronicRegistration: []}
    year_start = datetime(ANCHOR.year, 1, 1)

    def flush(force: bool = False) -> None:
        if force or len(buffers[Person]) >= BATCH:
            for model in (Household, Person, Enrolment, Identity, Account, Contribution, MutualAidGrant, ChronicRegistration):
                if buffers[model]:
                    session.execute(insert(model), buffers[model])
                    buffers[model] = []
            if commit_batches:
                # Large regions commit batch by batch: bounded WAL and memory, and progress survives.
                session.commit()

    households = _households(rng, ANCHOR)
    hshld_id = 0
    while report.people < people:
        hshld_id += 1
        region = regions[hshld_id % len(regions)]
        buffers[Household].append({"hshld_id": hshld_id, "admdvs": region.admdvs, "addr": f"{region.name}{rng.choice(region.districts)}"})
        report.households += 1
        head_account: str | None = None
        for relation, age, gend in next(households):
            if report.people >= people:
                break
            report.people += 1
            psn_no = f"{region.admdvs}{report.people:014d}"
            brdy = _birth(rng, ANCHOR, age)
            district = rng.choice(region.districts)
            sequence = rng.randrange(0, 499) * 2 + (1 if gend == "1" else 0)
            certno = idcard.make(district, brdy, sequence)
            while certno in used_certnos:
                sequence = (sequence + 2) % 1000
                certno = idcard.make(district, brdy, sequence)
            used_certnos.add(certno)
            buffers[Person].append({
                "psn_no": psn_no, "psn_cert_type": "01", "certno": certno, "psn_name": _name(rng, gend), "gend": gend,
                "naty": "01" if rng.random() < 0.92 else f"{rng.randint(2, 56):02d}", "brdy": brdy, "ntly": "CHN",
                "tel": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}", "hshld_id": hshld_id, "hshld_rlts": relation,
                "card_no": f"{region.card_letter}{report.people:08d}", "card_sn": f"{rng.getrandbits(128):032x}",
            })
            retired = _retired(age, gend)
            employee = age >= 18 and ((not retired and rng.random() < 0.65) or (retired and rng.random() < 0.6))
            status = "2" if rng.random() < 0.01 else "1"
            start = max(brdy + timedelta(days=30), date(2005, 1, 1) + timedelta(days=rng.randrange(6000)))
            start = min(start, ANCHOR - timedelta(days=400))
            start = max(start, brdy)
            paused = ANCHOR - timedelta(days=rng.randrange(1, 200)) if status == "2" else None

            person = {"psn_no": psn_no, "psn_insu_stas": status, "psn_insu_date": start, "paus_insu_date": paused,
                      "insuplc_admdvs": region.admdvs}

            def enrol(insutype: str, psn_type: str, emp_no: str | None = None, cvlserv: str = "0", person: dict[str, Any] = person) -> None:
                buffers[Enrolment].append({**person, "insutype": insutype, "psn_type": psn_type, "emp_no": emp_no, "cvlserv_flag": cvlserv})
                report.enrolments += 1

            if employee:
                emp_no = None if retired else rng.choice(employers[region.admdvs])
                civil = not retired and rng.random() < 0.1
                psn_type = ("1202" if civil else "1201") if retired else ("1102" if civil else "1101")
                enrol("310", psn_type, emp_no, "1" if civil else "0")
                enrol("330", psn_type, emp_no, "1" if civil else "0")
                if civil:
                    enrol("320", psn_type, emp_no, "1")
                opening = rng.randrange(0, 800000)
                credits = 0
                wage = rng.randrange(400000, 2000000, 100)
                for month in months:
                    if retired:
                        row = {"cntr_base_fen": 0, "emp_pay_fen": 0, "psn_pay_fen": 0, "acct_cred_fen": 12000}
                    else:
                        row = {"cntr_base_fen": wage, "emp_pay_fen": wage * 8 // 100, "psn_pay_fen": wage * 2 // 100,
                               "acct_cred_fen": wage * 2 // 100}
                    credits += row["acct_cred_fen"]
                    buffers[Contribution].append({"psn_no": psn_no, "insutype": "310", "cntr_ym": f"{month:%Y%m}",
                                                  "paid_on": month + timedelta(days=14), **row})
                    report.contributions += 1
                buffers[Account].append({"psn_no": psn_no, "insutype": "310", "opening_fen": opening, "opened_on": months[0],
                                         "balance_fen": opening + credits})
                report.accounts += 1
                if relation == "01":
                    head_account = psn_no
            else:
                psn_type = "16" if retired else ("1501" if age >= 18 else ("1402" if age < 7 else "1403"))
                enrol("390", psn_type)
                enrol("392", psn_type)
                # residents pay once a year; emp_pay holds the government subsidy
                buffers[Contribution].append({"psn_no": psn_no, "insutype": "390", "cntr_ym": f"{on.year}01", "cntr_base_fen": 0,
                                              "emp_pay_fen": 67000, "psn_pay_fen": 40000, "acct_cred_fen": 0,
                                              "paid_on": date(on.year - 1, 12, 15)})
                report.contributions += 1
            if age >= 45 and status == "1":
                for code, chance in CHRONIC:
                    if chronic_rng.random() < chance:
                        assessed = ANCHOR - timedelta(days=chronic_rng.randrange(30, 1500))
                        report.chronic_registrations += 1
                        buffers[ChronicRegistration].append({
                            "trt_dcla_detl_sn": f"{region.admdvs}{assessed:%Y%m%d}000000{report.chronic_registrations:010d}",
                            "psn_no": psn_no,
                            "insutype": "310" if employee else "390", "opsp_dise_code": code, "opsp_dise_name": CHRONIC_NAMES[code],
                            "tel": "", "addr": "", "insu_optins": region.admdvs, "ide_fixmedins_no": f"H{region.admdvs}00001",
                            "ide_fixmedins_name": f"{region.name.removesuffix('市')}市第1人民医院", "hosp_ide_date": assessed,
                            "diag_dr_codg": f"D{region.admdvs}00001", "diag_dr_name": "", "begndate": assessed, "enddate": None,
                            "status": "active", "fixmedins_code": f"H{region.admdvs}00001", "opter": "0001", "opter_name": "",
                            "filed_at": datetime.combine(assessed, datetime.min.time()), "cancelled_at": None, "cancel_memo": ""})
            if head_account and head_account != psn_no:
                # the head's personal account may pay for the family (家庭共济)
                buffers[MutualAidGrant].append({"grantor_psn_no": head_account, "beneficiary_psn_no": psn_no, "active": 1,
                                                "granted_at": datetime(ANCHOR.year, 1, 1)})
            roll = rng.random()
            identity: tuple[str, str | None] | None
            if roll < 0.005:
                identity = ("2101", None)
            elif roll < 0.035:
                identity = ("2102", None)
            elif roll < 0.055:
                identity = ("2201", str(rng.randint(1, 4)))
            else:
                identity = None
            if identity:
                buffers[Identity].append({"psn_no": psn_no, "psn_idet_type": identity[0], "psn_type_lv": identity[1],
                                          "memo": "", "begntime": year_start - timedelta(days=rng.randrange(2000)), "endtime": None})
            if progress:
                progress(1)
            flush()
    flush(force=True)
    return report


def generate(session: Session, *, people: int, seed: int, on: date | None = None, institutions_per_kind: int = 20,
             progress: Callable[[int], None] | None = None, commit_batches: bool = False, only: tuple[str, ...] = ()) -> DemoReport:
    """The demo: both regions, or ``only`` those named (a federation's province node holds its own region's people)."""
    regions = tuple(r for r in REGIONS if not only or r.admdvs in only)
    if not regions:
        raise ValueError(f"no demo region among {', '.join(only)} (there are {', '.join(r.admdvs for r in REGIONS)})")
    rng = random.Random(seed)
    on = on or clock.today()
    deployment.set_mode(session, deployment.DEMO)
    catalog_ver, catalog_rows = seed_reference_data(session, seed)
    institutions = seed_institutions(session, rng, seed, institutions_per_kind, regions)
    credit.add_demo_bank(session)
    report = generate_people(session, rng, people, on, progress, commit_batches, chronic_rng=random.Random(f"{seed}:chronic"),
                             regions=regions)
    report.institutions = institutions
    report.catalogue_rows = int(catalog_rows)
    first = regions[0]
    report.sample = {"fixmedins_code": f"H{first.admdvs}00001", "catalog_ver": catalog_ver}
    return report
