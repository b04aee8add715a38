"""Concurrent settlements of one person against a real server with two worker processes.

Many counters settle for the same person (or family) at the same moment: the account never
goes below zero, no annual cap is exceeded, nothing is lost, and the ledger check passes.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy import select, update

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, cert, fee, fresh_person, ok, person_with, serial
from yibao.client import CounterClient
from yibao.core import clock
from yibao.ledger.models import MutualAidGrant, YearTotal
from yibao.reconciliation.books import check
from yibao.registry.models import Account, Person

LEVEL_1 = "H37010000005"


def prepared_visits(url: str, code: str, person: Person, insutype: str, amounts: list[str], item: str) -> list[tuple[CounterClient, dict]]:
    """One signed-in counter per visit, each with a registered visit and uploaded fee lines, ready to settle."""
    out = []
    for amount in amounts:
        client = CounterClient(url, code, secret_of(code), mdtrtarea_admvs="370100")
        ok(client.sign_in())
        reg = ok(client.call("2201", {"data": {"psn_no": person.psn_no, "insutype": insutype, "begntime": clock.fmt_datetime(clock.now()),
                                                **cert(person), "ipt_otp_no": serial("CC")}}))
        mdtrt_id = reg["data"]["mdtrt_id"]
        ok(client.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, item, amount)]}))
        out.append((client, {"data": {"psn_no": person.psn_no, **cert(person), "med_type": "11", "medfee_sumamt": Decimal(amount),
                                      "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "1",
                                      "insutype": insutype}}))
    return out


def settle_all_at_once(visits: list[tuple[CounterClient, dict]]) -> list[dict]:
    answers: list[dict] = []
    barrier = threading.Barrier(len(visits))

    def go(client: CounterClient, body: dict) -> None:
        barrier.wait()
        answers.append(client.call("2207", body))

    threads = [threading.Thread(target=go, args=v) for v in visits]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_one_account_is_never_overdrawn(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    person = fresh_person(db, "310", retired=False)
    with db.unit_of_work() as session:
        session.execute(update(Account).where(Account.psn_no == person.psn_no)
                        .values(opening_fen=Account.opening_fen - Account.balance_fen + 10_000, balance_fen=10_000))
        session.execute(update(MutualAidGrant).where(MutualAidGrant.beneficiary_psn_no == person.psn_no).values(active=0))
    answers = settle_all_at_once(prepared_visits(live_server, HOSPITAL, person, "310", ["30.00"] * 8, codes["bing"]))
    assert all(a["infcode"] == 0 for a in answers), [a["err_msg"] for a in answers]
    paid = sum(Decimal(str(a["output"]["setlinfo"]["acct_pay"])) for a in answers)
    assert paid == Decimal("100.00")
    assert sorted(Decimal(str(a["output"]["setlinfo"]["balc"])) for a in answers)[0] == 0
    with db.unit_of_work(write=False) as session:
        assert session.get(Account, person.psn_no).balance_fen == 0
        assert check(session).ok


def test_the_outpatient_cap_is_never_exceeded(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    person = fresh_person(db, "390")
    # level-1 clinic, residents: no deductible, 50%, 500.00 outpatient cap a year: eight visits of 400.00 would ask 1,600.00
    answers = settle_all_at_once(prepared_visits(live_server, LEVEL_1, person, "390", ["400.00"] * 8, codes["jia"]))
    assert all(a["infcode"] == 0 for a in answers), [a["err_msg"] for a in answers]
    pooled = sum(Decimal(str(a["output"]["setlinfo"]["hifp_pay"])) for a in answers)
    assert pooled == Decimal("500.00")
    with db.unit_of_work(write=False) as session:
        assert session.get(YearTotal, (person.psn_no, clock.now().year)).hifp_otp == 50_000
        assert check(session).ok


def test_a_family_sharing_one_account(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    with db.unit_of_work() as session:
        grant = session.scalars(select(MutualAidGrant).where(MutualAidGrant.active == 1).order_by(MutualAidGrant.grantor_psn_no)).first()
        assert grant is not None
        members = [grant.beneficiary_psn_no, *session.scalars(select(MutualAidGrant.beneficiary_psn_no).where(
            MutualAidGrant.grantor_psn_no == grant.grantor_psn_no, MutualAidGrant.beneficiary_psn_no != grant.beneficiary_psn_no))]
        session.execute(update(Account).where(Account.psn_no == grant.grantor_psn_no).values(
            opening_fen=Account.opening_fen - Account.balance_fen + 5_000, balance_fen=5_000))
        people = [session.get(Person, p) for p in members]
        from yibao.registry.models import Enrolment

        types = {p.psn_no: session.scalar(select(Enrolment.insutype).where(Enrolment.psn_no == p.psn_no,
                                                                           Enrolment.insutype.in_(("310", "390"))))
                 for p in people}
        own = {p.psn_no: session.get(Account, p.psn_no) for p in people}
        for p in people:
            if own[p.psn_no] is not None:
                own[p.psn_no].opening_fen -= own[p.psn_no].balance_fen
                own[p.psn_no].balance_fen = 0
    visits = []
    for p in people:
        visits += prepared_visits(live_server, HOSPITAL, p, types[p.psn_no], ["20.00", "20.00"], codes["bing"])
    answers = settle_all_at_once(visits)
    assert all(a["infcode"] == 0 for a in answers), [a["err_msg"] for a in answers]
    shared = sum(Decimal(str(a["output"]["setlinfo"]["acct_mulaid_pay"])) for a in answers)
    assert shared == min(Decimal("50.00"), Decimal("20.00") * len(visits))
    with db.unit_of_work(write=False) as session:
        assert session.get(Account, grant.grantor_psn_no).balance_fen == 5_000 - int(shared * 100)
        assert check(session).ok


def test_concurrent_retries_of_one_settlement_settle_once(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    """A counter that timed out sends its 2207 again with the same msgid, twice at once, to two workers: one settlement,
    and every answer is the same one."""
    from yibao.encounter.models import Settlement

    codes = catalogue_codes(db)
    person = fresh_person(db, "390")
    [(client, body)] = prepared_visits(live_server, HOSPITAL, person, "390", ["25.00"], codes["jia"])
    msgid = client.new_msgid()
    envelope = client.envelope("2207", body, msgid=msgid)
    answers: list[dict] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        answers.append(client.send(envelope))  # the same envelope, a fresh signature each time

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a["infcode"] == 0 for a in answers), [a["err_msg"] for a in answers]
    assert len({a["output"]["setlinfo"]["setl_id"] for a in answers}) == 1
    with db.unit_of_work(write=False) as session:
        settled = session.scalars(select(Settlement).where(Settlement.mdtrt_id == body["data"]["mdtrt_id"])).all()
        assert len(settled) == 1 and check(session).ok


def test_one_msgid_two_different_settlements_at_once(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    """Two counters whose msgid counters restarted settle two different visits with the same msgid at the same moment:
    both are settled, each answer is its own, and the msgid is flagged as reused."""
    from yibao.gateway.service import msgid_reused

    codes = catalogue_codes(db)
    first, second = person_with(db, "390"), person_with(db, "310", retired=False)
    visits = (prepared_visits(live_server, HOSPITAL, first, "390", ["11.00"], codes["jia"])
              + prepared_visits(live_server, HOSPITAL, second, "310", ["12.00"], codes["jia"]))
    msgid = visits[0][0].new_msgid()
    answers: dict[str, dict] = {}
    barrier = threading.Barrier(2)

    def go(client: CounterClient, body: dict) -> None:
        barrier.wait()
        answers[body["data"]["mdtrt_id"]] = client.call("2207", body, msgid=msgid)

    threads = [threading.Thread(target=go, args=v) for v in visits]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a["infcode"] == 0 for a in answers.values()), [a["err_msg"] for a in answers.values()]
    assert {m: a["output"]["setlinfo"]["mdtrt_id"] for m, a in answers.items()} == {m: m for m in answers}
    with db.unit_of_work(write=False) as session:
        assert msgid_reused(session, HOSPITAL, msgid) and check(session).ok
