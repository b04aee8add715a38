"""The demo generator is deterministic; the `yibao` command works end to end."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select

from conftest import free_port, fresh_database_url, secret_of, wait_for_server
from yibao.client import CounterClient
from yibao.demo.generator import generate
from yibao.registry.models import Account, Enrolment, Person
from yibao.store.db import Database
from yibao.store.migrate import upgrade


def digest(db: Database) -> str:
    h = hashlib.sha256()
    with db.unit_of_work(write=False) as session:
        for p in session.scalars(select(Person).order_by(Person.psn_no)):
            h.update(f"{p.psn_no}|{p.certno}|{p.psn_name}|{p.brdy}|{p.card_sn}|{p.hshld_id}".encode())
        for e in session.scalars(select(Enrolment).order_by(Enrolment.psn_no, Enrolment.insutype)):
            h.update(f"{e.psn_no}|{e.insutype}|{e.psn_type}|{e.psn_insu_date}".encode())
        for a in session.scalars(select(Account).order_by(Account.psn_no)):
            h.update(f"{a.psn_no}|{a.balance_fen}".encode())
    return h.hexdigest()


def seeded(tmp_path: Path, seed: int) -> Database:
    db = Database(fresh_database_url(tmp_path))
    upgrade(db.engine)
    with db.unit_of_work() as session:
        generate(session, people=150, seed=seed, on=date(2026, 6, 30), institutions_per_kind=1)
    return db


def test_same_seed_same_region(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    a, b, c = seeded(tmp_path / "a", 7), seeded(tmp_path / "b", 7), seeded(tmp_path / "c", 8)
    try:
        assert digest(a) == digest(b) != digest(c)
    finally:
        for db in (a, b, c):
            db.dispose()


def run_cli(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yibao", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_serve_creates_seeds_and_answers(tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path)
    port = free_port()
    env = {**os.environ, "YIBAO_DATABASE_URL": url, "YIBAO_DEMO_SEED": "99"}
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    server = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--demo", "--port", str(port), "--people", "120"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_server(f"http://127.0.0.1:{port}", server, log_path)
        db = Database(url)
        with db.unit_of_work(write=False) as session:
            certno = session.scalar(select(Person.certno).limit(1))
        secret = secret_of("H37010000001", db)
        client = CounterClient(f"http://127.0.0.1:{port}", "H37010000001", secret)
        db.dispose()
        assert client.sign_in()["infcode"] == 0
        # demo secrets are random, never printed at start (yibao keys show prints them on request)
        output = log_path.read_text()
        assert secret not in output and "demo mode" in output
        answer = client.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "psn_cert_type": "01"}})
        assert answer["infcode"] == 0 and answer["output"]["baseinfo"]["certno"] == certno
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_cli_db_upgrade_demo_and_catalog_import(tmp_path: Path) -> None:
    env = {**os.environ, "YIBAO_DATABASE_URL": fresh_database_url(tmp_path)}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    demo = run_cli("demo", "--people", "50", env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "seeded 50 people" in demo.stdout
    csv_path = tmp_path / "cat.csv"
    csv_path.write_text(
        "med_list_codg,med_list_name,list_type,med_chrgitm_type,chrgitm_lv,begndate\n"
        "XA01AAA001A001010100009,好药,101,09,01,2026-01-01\n"
        "BAD,坏药,101,09,01,2026-01-01\n",
        encoding="utf-8",
    )
    result = run_cli("catalog", "import", str(csv_path), env=env)
    assert result.returncode == 1  # some rows were rejected
    assert "1 added" in result.stdout and "1 rejected" in result.stdout and "med_list_codg" in result.stdout
    again = run_cli("catalog", "import", str(csv_path), env=env)
    assert "0 added" in again.stdout and "1 unchanged" in again.stdout
    missing = run_cli("catalog", "import", str(tmp_path / "nope.csv"), env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    keys = run_cli("keys", "show", "H37010000001", env=env)
    assert keys.returncode == 0 and "secret" in keys.stdout
