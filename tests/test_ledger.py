"""Random traffic, then the ledger check; reconciliation (3201/3202) and queries (5201/5203/5204/5205)."""

from __future__ import annotations

import base64
import io
import zipfile
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from conftest import secret_of
from flows import catalogue_codes, ok, outpatient, person_with, registered_disease
from yibao.client import CounterClient
from yibao.core import clock
from yibao.demo import traffic
from yibao.encounter.models import Settlement
from yibao.reconciliation.books import check
from yibao.registry.models import Account


@pytest.fixture(scope="module")
def traffic_report(http, db):  # type: ignore[no-untyped-def]
    import random

    with db.unit_of_work(write=False) as session:
        codes = traffic.institutions(session, "370100")
        people = [p for p in traffic.candidates(session, 400, random.Random(1)) if p.admdvs == "370100"]
        items = traffic.catalogue(session)
    clients = {}
    for code in codes:
        client = CounterClient("http://testserver", code, secret_of(code), http=http)
        assert client.sign_in()["infcode"] == 0
        clients[code] = client
    return traffic.run(clients, people, items, visits=500, seed=7)


def test_random_traffic_keeps_the_books(traffic_report, db) -> None:  # type: ignore[no-untyped-def]
    assert traffic_report.outpatient > 250 and traffic_report.inpatient > 20 and traffic_report.pharmacy > 20
    assert traffic_report.reversals > 10
    # the only refusals random traffic may meet are business rules (e.g. an rx drug without a prescription)
    assert all("internal error" not in e for e in traffic_report.errors), traffic_report.errors
    with db.unit_of_work(write=False) as session:
        report = check(session)
    assert report.ok, report.problems
    assert report.settlements > 400


def test_ledger_check_finds_tampering(traffic_report, db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work() as session:
        account = session.scalar(select(Account).order_by(Account.psn_no).limit(1))
        account.balance_fen += 1
    with db.unit_of_work(write=False) as session:
        report = check(session)
    assert not report.ok and any("account" in p for p in report.problems)
    with db.unit_of_work() as session:
        session.execute(update(Account).where(Account.psn_no == account.psn_no).values(balance_fen=Account.balance_fen - 1))
        victim = session.scalar(select(Settlement).where(Settlement.hifp_pay > 0).limit(1))
        victim.hifp_pay += 100
    with db.unit_of_work(write=False) as session:
        report = check(session)
    assert any(victim.setl_id in p for p in report.problems) and any("year total" in p for p in report.problems)
    with db.unit_of_work() as session:
        session.execute(update(Settlement).where(Settlement.setl_id == victim.setl_id).values(hifp_pay=Settlement.hifp_pay - 100))
    with db.unit_of_work(write=False) as session:
        assert check(session).ok


def test_reconciliation_totals_and_details(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    person = person_with(db, "390")
    # two settlements of its own, whatever else the module has settled: one the detail file leaves out, one it states wrongly
    out = outpatient(counter, person, "390", [(codes["jia"], "120.00")], acct="0")
    misstated = outpatient(counter, person, "390", [(codes["jia"], "30.00")], acct="0")["setlinfo"]["setl_id"]
    today = clock.today().isoformat()
    with db.unit_of_work(write=False) as session:
        rows = session.scalars(select(Settlement).where(Settlement.fixmedins_code == counter.fixmedins_code)).all()
    total = sum(r.medfee_sumamt for r in rows)
    funds = sum(r.fund_pay_sumamt for r in rows)
    acct = sum(r.acct_pay + r.acct_mulaid_pay for r in rows)
    count = sum(1 if r.refd_setl_flag == "0" else -1 for r in rows)
    data = {"insutype": "", "clr_type": "", "setl_optins": "370100", "stmt_begndate": today, "stmt_enddate": today,
            "medfee_sumamt": Decimal(total) / 100, "fund_pay_sumamt": Decimal(funds) / 100, "acct_pay": Decimal(acct) / 100,
            "fixmedins_setl_cnt": count}
    assert ok(counter.call("3201", {"data": data}))["stmt_rslt"] == "0"
    off = ok(counter.call("3201", {"data": {**data, "medfee_sumamt": Decimal(total + 1) / 100, "fixmedins_setl_cnt": count + 1}}))
    assert off["stmt_rslt"] == "1" and "医疗费总额不平" in off["stmt_rslt_dscr"] and "结算笔数不平" in off["stmt_rslt_dscr"]
    # detail file: every row but one, and one amount wrong
    keep = [r for r in rows if r.setl_id != out["setlinfo"]["setl_id"]]
    lines = ["setl_id\tmdtrt_id\tpsn_no\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\trefd_setl_flag"]
    for r in keep:
        medfee = r.medfee_sumamt + (1 if r.setl_id == misstated else 0)
        lines.append(f"{r.setl_id}\t{r.mdtrt_id}\t{r.psn_no}\t{Decimal(medfee) / 100}\t{Decimal(r.fund_pay_sumamt) / 100}\t"
                     f"{Decimal(r.acct_pay + r.acct_mulaid_pay) / 100}\t{r.refd_setl_flag}")
    uploaded = ok(counter.call("9101",
                               {"fsUploadIn": {"filename": "detail.txt", "in": base64.b64encode("\n".join(lines).encode()).decode()}}))
    result = ok(counter.call("3202", {"data": {"file_qury_no": uploaded["file_qury_no"], "stmt_begndate": today, "stmt_enddate": today,
                                               "medfee_sumamt": 0, "fund_pay_sumamt": 0, "cash_payamt": 0, "fixmedins_setl_cnt": 0,
                                               "setl_optins": "370100"}}))
    assert result["stmt_rslt"] == "1" and result["data_cnt"] == 2
    fetched = counter.call("9102", {"fsDownloadIn": {"file_qury_no": result["file_qury_no"], "filename": result["filename"]}})
    text = zipfile.ZipFile(io.BytesIO(fetched["file"])).read("stmt_detail_result.txt").decode()
    assert out["setlinfo"]["setl_id"] in text and "平台有、机构无" in text and misstated in text and "金额或退费标志不一致" in text


def test_queries(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    person = person_with(db, "310", retired=True)
    out = outpatient(counter, person, "310", [(codes["jia"], "80.00"), (codes["bing"], "20.00")], med_type="14",
                     dise_codg=registered_disease(counter, person, "310"))
    info = out["setlinfo"]
    visits = ok(counter.call("5201", {"data": {"psn_no": person.psn_no, "begntime": "2020-01-01 00:00:00"}}))["mdtrtinfo"]
    assert info["mdtrt_id"] in {v["mdtrt_id"] for v in visits}
    one = ok(counter.call("5203", {"data": {"psn_no": person.psn_no, "setl_id": info["setl_id"], "mdtrt_id": info["mdtrt_id"]}}))
    assert one["setlinfo"]["medfee_sumamt"] == info["medfee_sumamt"] and one["setlinfo"]["refd_setl_flag"] == "0"
    assert one["setldetail"] == out["setldetail"]
    fees = ok(counter.call("5204", {"data": {"psn_no": person.psn_no, "mdtrt_id": info["mdtrt_id"]}}))["feedetail"]
    assert {f["hilist_code"] for f in fees} == {codes["jia"], codes["bing"]} and all(f["setl_id"] == info["setl_id"] for f in fees)
    history = ok(counter.call("5205", {"data": {"psn_no": person.psn_no, "begntime": "2020-01-01 00:00:00"}}))["feedetail"]
    assert [h["med_list_codg"] for h in history] == [codes["jia"]]  # herbal pieces are drugs; the service item is not
    stranger = counter.call("5203", {"data": {"psn_no": "370100000000000099999", "setl_id": info["setl_id"]}})
    assert stranger["infcode"] == -1
