"""The federation end to end: a hub and the province nodes 370100 and 440300 as separate processes, each on its own
PostgreSQL database, with nats-server between them (`yibao federation up`, in a folder of the test's own).

A person insured in 370100 (Jinan) is treated at a hospital of 440300 (Shenzhen): 440300's node classifies the lines
with its catalogue, 370100's node applies its policy, totals and accounts. With and without a filing; a reversal; the
home's node killed mid-settlement and the call retried; the answer lost on the way back (retried, and not retried:
the home releases what it reserved); the month cleared to the fen; both nodes' books balanced.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import flows
from yibao.client import CounterClient
from yibao.config import Settings
from yibao.core import clock
from yibao.federation import hub, launcher
from yibao.federation.models import AwaySettlement, ClearingEntry, RemoteSettlement
from yibao.filing import service as filing
from yibao.gateway import keys
from yibao.ledger.models import YearTotal
from yibao.reconciliation import books
from yibao.registry.models import Account, Person
from yibao.store.db import Database

pytestmark = pytest.mark.skipif(shutil.which("nats-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
                                reason="needs nats-server and PostgreSQL (scripts/test.sh installs them)")

HOME, CARE, HOSPITAL = "370100", "440300", "H44030000001"


class LossyNetwork:
    """Between the hub and the home's node: forwards each call, and can lose the next answers on the way back
    (the home did the work; the hub hears nothing)."""

    def __init__(self) -> None:
        self.upstream = ""
        self.lose_answers = 0
        network = self

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-yibao") or k.lower() == "content-type"}
                try:
                    reply = httpx.post(network.upstream + self.path, content=body, headers=headers, timeout=10)
                except httpx.HTTPError:
                    self.close_connection = True
                    return
                if network.lose_answers > 0:
                    network.lose_answers -= 1
                    self.close_connection = True  # the answer is lost: the connection just closes
                    return
                self.send_response(reply.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Fed:
    def __init__(self, folder: Path, layout: launcher.Layout, network: LossyNetwork) -> None:
        self.folder, self.layout, self.network = folder, layout, network
        self.db = {p.name: Database.from_settings(Settings(database_url=p.database_url)) for p in layout.processes}
        with self.db[CARE].unit_of_work(write=False) as session:
            secret = keys.active_secret(session, HOSPITAL)
        assert secret
        self.counter = CounterClient(layout.process(CARE).url, HOSPITAL, secret, mdtrtarea_admvs=CARE)
        assert self.counter.sign_in()["infcode"] == 0
        self.codes = flows.catalogue_codes(self.db[CARE])
        self.used: set[str] = set()

    def person(self, insutype: str = "390") -> Person:
        found = flows.person_with(self.db[HOME], insutype, region=HOME, min_balance=100_000 if insutype == "310" else 0,
                                  skip=self.used)
        self.used.add(found.psn_no)
        return found

    def call(self, infno: str, input_: dict[str, Any], msgid: str | None = None) -> dict[str, Any]:
        return self.counter.call(infno, input_, insuplc_admdvs=HOME, msgid=msgid)

    def visit(self, person: Person, insutype: str, amount: str) -> tuple[str, dict[str, Any]]:
        """1101, 2201 and 2204 at the hospital away from home; the mdtrt_id and 2207's input."""
        flows.ok(self.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "psn_cert_type": "01"}}))
        reg = flows.ok(self.call("2201", {"data": {
            "psn_no": person.psn_no, "insutype": insutype, "begntime": clock.fmt_datetime(clock.now()), **flows.cert(person),
            "ipt_otp_no": "MZ" + secrets.token_hex(6), "atddr_no": "D44030000001", "dr_name": "医生", "dept_code": "A03",
            "dept_name": "内科", "caty": "A03", "med_type": "11"}}))
        mdtrt_id = reg["data"]["mdtrt_id"]
        flows.ok(self.call("2204", {"feedetail": [flows.fee(mdtrt_id, person.psn_no, self.codes["jia"], amount)]}))
        return mdtrt_id, {"data": {"psn_no": person.psn_no, **flows.cert(person), "med_type": "11", "medfee_sumamt": Decimal(amount),
                                   "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "1",
                                   "insutype": insutype}}

    def balance(self, psn_no: str) -> int:
        with self.db[HOME].unit_of_work(write=False) as session:
            return session.scalar(select(Account.balance_fen).where(Account.psn_no == psn_no)) or 0

    def hifp_ytd(self, psn_no: str) -> int:
        with self.db[HOME].unit_of_work(write=False) as session:
            return session.scalar(select(YearTotal.hifp).where(YearTotal.psn_no == psn_no)) or 0

    def away(self, **where: str) -> list[AwaySettlement]:
        with self.db[HOME].unit_of_work(write=False) as session:
            stmt = select(AwaySettlement)
            for name, value in where.items():
                stmt = stmt.where(getattr(AwaySettlement, name) == value)
            return list(session.scalars(stmt))

    def eventually(self, check: Any, seconds: float = 20) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    folder = tmp_path_factory.mktemp("federation")
    network = LossyNetwork()
    layout = launcher.up(folder, people=400, fsync=False, say=lambda _text: None, hub_reaches={HOME: network.port},
                         extra_env={"YIBAO_FEDERATION_TIMEOUT_S": "3", "YIBAO_FEDERATION_RESERVATION_S": "1",
                                    "YIBAO_FEDERATION_SWEEP_S": "0.5"})
    network.upstream = layout.process(HOME).url
    try:
        yield Fed(folder, layout, network)
    finally:
        launcher.down(folder, say=lambda _text: None)
        network.server.shutdown()


def test_care_away_settles_at_home_with_and_without_a_filing(fed: Fed) -> None:
    unfiled, filed = fed.person(), fed.person()
    with fed.db[HOME].unit_of_work() as session:  # the home owns the filing: long-term residence in Shenzhen
        filing.file(session, filing.Request(filed.psn_no, "390", "1", CARE, clock.today() - timedelta(days=1), None), source="04")
    # 2001 at the place of care: the home checks, and reports the filing it holds
    for person, expected in ((unfiled, "未备案"), (filed, "异地长期居住")):
        checks = flows.ok(fed.call("2001", {"data": {"psn_no": person.psn_no, "insutype": "390", "med_type": "11",
                                                     "begntime": clock.fmt_datetime(clock.now())}}))["trtinfo"]
        [found] = [c for c in checks if c["trt_chk_type"] == "21"]
        assert expected in found["trt_chk_rslt"] and "跨省" in found["trt_chk_rslt"], found
    answers = {}
    for person in (unfiled, filed):
        _mdtrt_id, data = fed.visit(person, "390", "200.00")
        before = fed.balance(person.psn_no)
        answers[person.psn_no] = out = flows.ok(fed.call("2207", data))["setlinfo"]
        assert out["psn_no"] == person.psn_no and out["clr_optins"] == HOME
        # the home's policy and totals paid: its year-to-date row moved; its account paid what the answer says
        assert fed.hifp_ytd(person.psn_no) == int(Decimal(out["hifp_pay"]) * 100) > 0
        assert before - fed.balance(person.psn_no) == int(Decimal(out["acct_pay"]) * 100)
    # long-term residence gets the home ratio; without a filing the policy's reduction applies
    assert Decimal(answers[filed.psn_no]["hifp_pay"]) > Decimal(answers[unfiled.psn_no]["hifp_pay"])
    # the place of care tells the home it committed (over JetStream): the reservations are confirmed
    assert fed.eventually(lambda: all(a.state == "confirmed" for a in fed.away(psn_no=unfiled.psn_no) + fed.away(psn_no=filed.psn_no)))


def test_a_reversal_undoes_the_home_part(fed: Fed) -> None:
    person = fed.person("310")
    before = fed.balance(person.psn_no)
    mdtrt_id, data = fed.visit(person, "310", "120.00")
    out = flows.ok(fed.call("2207", data))["setlinfo"]
    assert fed.balance(person.psn_no) < before
    flows.ok(fed.call("2208", {"data": {"setl_id": out["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))
    assert fed.balance(person.psn_no) == before and fed.hifp_ytd(person.psn_no) == 0
    [original] = fed.away(setl_id=out["setl_id"])
    assert original.state == "reversed"


def test_the_home_killed_mid_settlement_then_a_retry_settles_once(fed: Fed) -> None:
    person = fed.person()
    mdtrt_id, data = fed.visit(person, "390", "90.00")
    home = fed.layout.process(HOME)
    os.kill(home.pid, signal.SIGKILL)
    msgid = fed.counter.new_msgid()
    refused = fed.call("2207", data, msgid=msgid)
    assert refused["infcode"] == -1 and "retry with the same msgid" in refused["err_msg"]
    with fed.db[CARE].unit_of_work(write=False) as session:  # nothing stayed behind at the place of care
        assert not session.scalar(select(func.count()).select_from(RemoteSettlement).where(RemoteSettlement.msg_key.contains(mdtrt_id)))
    launcher.restart(fed.folder, HOME, {"YIBAO_FEDERATION_TIMEOUT_S": "3", "YIBAO_FEDERATION_RESERVATION_S": "1",
                                        "YIBAO_FEDERATION_SWEEP_S": "0.5"})
    fed.network.upstream = fed.layout.process(HOME).url
    out = flows.ok(fed.call("2207", data, msgid=msgid))["setlinfo"]
    assert [a.setl_id for a in fed.away(mdtrt_id=mdtrt_id)] == [out["setl_id"]]


def test_a_lost_answer_retried_completes_once(fed: Fed) -> None:
    person = fed.person()
    mdtrt_id, data = fed.visit(person, "390", "80.00")
    msgid = fed.counter.new_msgid()
    fed.network.lose_answers = 1
    refused = fed.call("2207", data, msgid=msgid)
    assert refused["infcode"] == -1, refused
    [reserved] = fed.away(mdtrt_id=mdtrt_id)  # the home did its part and heard nothing back
    out = flows.ok(fed.call("2207", data, msgid=msgid))["setlinfo"]
    assert out["setl_id"] == reserved.setl_id and len(fed.away(mdtrt_id=mdtrt_id)) == 1
    assert fed.eventually(lambda: fed.away(mdtrt_id=mdtrt_id)[0].state == "confirmed")


def test_a_lost_answer_never_retried_is_released_at_home(fed: Fed) -> None:
    person = fed.person("310")
    before = fed.balance(person.psn_no)
    mdtrt_id, data = fed.visit(person, "310", "70.00")
    msgid = fed.counter.new_msgid()
    fed.network.lose_answers = 1
    assert fed.call("2207", data, msgid=msgid)["infcode"] == -1
    # the home's sweeper asks the place of care, which never committed it: released, the account paid back
    assert fed.eventually(lambda: [a.state for a in fed.away(mdtrt_id=mdtrt_id) if a.refd_setl_flag == "0"] == ["released"])
    assert fed.balance(person.psn_no) == before
    late = fed.call("2207", data, msgid=msgid)
    assert late["infcode"] == -1 and "new msgid" in late["err_msg"]
    flows.ok(fed.call("2207", data))  # a new msgid settles it


def test_the_month_clears_to_the_fen_and_the_books_balance(fed: Fed) -> None:
    person = fed.person()
    _mdtrt_id, data = fed.visit(person, "390", "150.00")
    flows.ok(fed.call("2207", data))
    window = hub.window_of(clock.now())

    def both_sides_heard() -> bool:
        with fed.db[HOME].unit_of_work(write=False) as session:
            paid = {a.setl_id for a in session.scalars(select(AwaySettlement).where(AwaySettlement.state != "released"))}
        with fed.db["hub"].unit_of_work(write=False) as session:
            entries = session.scalars(select(ClearingEntry)).all()
        return {e.setl_id for e in entries if e.side == "home"} >= {s for s in paid if not s.startswith("R")} and \
            {e.setl_id for e in entries if e.side == "care"} == {e.setl_id for e in entries if e.side == "home"}

    assert fed.eventually(both_sides_heard, 30)
    with fed.db["hub"].unit_of_work() as session:
        statement = hub.close(session, window)
    assert statement["mismatches"] == []
    [pair] = statement["pairs"]
    assert (pair["home"], pair["care"]) == (HOME, CARE) and pair["home_says"] == pair["care_says"] == pair["agreed"]
    # what the home's ledger owes the place of care equals the statement, and the place of care's ledger agrees
    with fed.db[HOME].unit_of_work(write=False) as session:
        owed = -sum(a.fund_pay_sumamt + a.acct_pay + a.acct_mulaid_pay for a in session.scalars(select(AwaySettlement))) * -1
    assert statement["net_positions_fen"] == {CARE: pair["agreed"], HOME: -pair["agreed"]} and owed == pair["agreed"]
    for name in (HOME, CARE):
        with fed.db[name].unit_of_work(write=False) as session:
            report = books.check(session)
        assert report.ok, report.problems


def test_a_reversal_whose_answer_was_lost_completes_on_retry(fed: Fed) -> None:
    person = fed.person("310")
    before = fed.balance(person.psn_no)
    mdtrt_id, data = fed.visit(person, "310", "110.00")
    out = flows.ok(fed.call("2207", data))["setlinfo"]
    fed.network.lose_answers = 1
    reverse = {"data": {"setl_id": out["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}
    assert fed.call("2208", reverse)["infcode"] == -1
    [original] = fed.away(setl_id=out["setl_id"])
    assert original.state == "reversed"  # the home undid its part and the place of care heard nothing
    answer = flows.ok(fed.call("2208", reverse))["setlinfo"]
    assert answer["setl_id"] == original.revs_setl_id and fed.balance(person.psn_no) == before


def test_a_node_may_not_confirm_or_release_for_the_home(fed: Fed) -> None:
    """Confirming and releasing are the home's own decisions: the hub routes neither, whoever signs."""
    from yibao.federation.protocol import ENCODER, ROUTE_PATH, sign

    _layout, node_keys = launcher.load(fed.folder)
    for op in ("release", "confirm", "../../../health"):
        body = ENCODER.encode({"to": HOME, "op": op, "body": {"msg_key": f"{HOSPITAL}:1:2"}})
        reply = httpx.post(fed.layout.process("hub").url + ROUTE_PATH, content=body,
                           headers=sign(bytes.fromhex(node_keys[CARE]), CARE, body), timeout=5).json()
        assert reply["ok"] is False and "unknown federation call" in reply["error"]["message"]
    # and a stranger without a key is refused outright
    assert httpx.post(fed.layout.process("hub").url + ROUTE_PATH, content=b"{}", timeout=5).status_code == 401


def test_a_stay_away_from_home_is_settled_by_the_home(fed: Fed) -> None:
    """2401, 2301, 2402 and 2304 at the place of care: the home counts the stay (its admission number, deductible, caps)."""
    person = fed.person()
    flows.ok(fed.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "psn_cert_type": "01"}}))
    admitted = flows.ok(fed.call("2401", {"mdtrtinfo": {
        "psn_no": person.psn_no, "insutype": "390", **flows.cert(person), "med_type": "21", "ipt_no": "ZY" + secrets.token_hex(6),
        "begntime": clock.fmt_datetime(clock.now()), "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
        "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D44030000002"},
        "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900", "diag_name": "急性阑尾炎"}]}))
    mdtrt_id = admitted["result"]["mdtrt_id"]
    flows.ok(fed.call("2301", {"feedetail": [flows.fee(mdtrt_id, person.psn_no, fed.codes["jia"], "3000.00")]}))
    flows.ok(fed.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now())}}))
    out = flows.ok(fed.call("2304", {"data": {"psn_no": person.psn_no, **flows.cert(person), "medfee_sumamt": Decimal("3000.00"),
                                              "psn_setlway": "01", "mdtrt_id": mdtrt_id, "insutype": "390", "acct_used_flag": "0",
                                              "mid_setl_flag": "0"}}))["setlinfo"]
    assert Decimal(out["hifp_pay"]) > 0 and out["clr_type"] == "21"
    with fed.db[HOME].unit_of_work(write=False) as session:
        admissions = session.scalar(select(YearTotal.admissions).where(YearTotal.psn_no == person.psn_no))
    assert admissions == 1  # the home counted the stay: the next one of the year meets the second-stay deductible
    [record] = fed.away(mdtrt_id=mdtrt_id)
    assert record.kind == "inpatient" and record.ytd_admission == 1


def test_events_wait_in_the_outbox_while_nats_is_down_and_catch_up(fed: Fed) -> None:
    layout, _keys = launcher.load(fed.folder)
    os.kill(layout.nats_pid, signal.SIGKILL)
    person = fed.person()
    _mdtrt_id, data = fed.visit(person, "390", "66.00")
    out = flows.ok(fed.call("2207", data))["setlinfo"]  # the settlement does not wait for the queue

    def cleared() -> set[str]:
        with fed.db["hub"].unit_of_work(write=False) as session:
            return set(session.scalars(select(ClearingEntry.side).where(ClearingEntry.setl_id == out["setl_id"])))

    time.sleep(1)
    assert cleared() == set()
    launcher.restart_nats(fed.folder)
    assert fed.eventually(lambda: cleared() == {"home", "care"}, 30)


def test_a_forged_clearing_event_on_the_queue_is_not_recorded(fed: Fed) -> None:
    """Anyone who can reach nats-server could publish: the hub records only what a node signed, for its own side."""
    import asyncio
    import json as json_

    import nats

    layout, node_keys = launcher.load(fed.folder)
    from yibao.federation.events import event_signature

    async def publish() -> None:
        connection = await nats.connect(f"nats://127.0.0.1:{layout.nats_port}")
        js = connection.jetstream()
        forged = {"side": "care", "setl_id": "FORGED000000000000000000000001", "home": HOME, "care": CARE, "amount_fen": 10_000_000,
                  "setl_time": "2026-11-20T10:00:00"}
        data = json_.dumps(forged).encode()
        await js.publish("yibao.clearing.care", data)  # unsigned
        # signed, but by the home speaking for the place of care's side
        await js.publish("yibao.clearing.care", data.replace(b"0001", b"0002"),
                         headers={"x-yibao-node": HOME, "x-yibao-signature": event_signature(
                             bytes.fromhex(node_keys[HOME]), HOME, "yibao.clearing.care", data.replace(b"0001", b"0002"))})
        await connection.close()

    asyncio.run(publish())
    time.sleep(2)
    with fed.db["hub"].unit_of_work(write=False) as session:
        assert not session.scalars(select(ClearingEntry).where(ClearingEntry.setl_id.like("FORGED%"))).all()
