"""Production is the default: nothing demo unless asked, secrets random and encrypted at rest, keys rotate with a grace
period, schemes per key, an append-only audit trail, durable acknowledgements, and a CLI that explains itself in one line."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from conftest import PG_URL, free_port, fresh_database_url, wait_for_server
from yibao.client import CounterClient
from yibao.core import clock, idcard, vault
from yibao.store.db import Database
from yibao.store.migrate import upgrade

HOSPITAL = "H37010000009"


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yibao", *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture  # one per test: the serve test needs it empty, whichever test ran before it
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An empty production database, set up by the commands an operator would use."""
    home = tmp_path_factory.mktemp("prod")
    env = {**os.environ, "YIBAO_DATABASE_URL": fresh_database_url(home), "YIBAO_HOME": str(home)}
    env.pop("YIBAO_DEMO", None)
    return env


def test_serve_on_an_empty_database_seeds_nothing_and_says_what_to_do(production: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--port", str(port)], env=production, stdout=handle,
                                stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_server(f"http://127.0.0.1:{port}", proc, log)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    output = log.read_text()
    assert "(production)" in output and "yibao institution add" in output and "yibao people import" in output
    assert "secret" not in output.lower()
    engine = create_engine(production["YIBAO_DATABASE_URL"])
    with engine.connect() as connection:
        counts = {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                  for table in ("person", "institution", "gateway_client", "catalog_item", "ec_credential")}
        mode = connection.execute(text("SELECT value FROM platform_setting WHERE key = 'mode'")).scalar()
        regions = connection.execute(text("SELECT count(*) FROM region")).scalar_one()
    engine.dispose()
    assert counts == dict.fromkeys(counts, 0)
    assert mode in (None, "production") and regions > 0  # national reference data only


def people_csv(path: Path) -> tuple[str, str]:
    first = idcard.make("370102", date(1980, 5, 6), 123)
    second = idcard.make("370103", date(1991, 7, 8), 224)
    path.write_text(
        "certno,psn_name,insutype,psn_type,insuplc_admdvs,psn_insu_date,acct_balance,card_no,card_sn\n"
        f"{first},张三,310,1101,370100,2020-01-01,1234.50,J99345678,0123456789abcdef\n"
        f"{first},张三,330,1101,370100,2020-01-01,,,\n"
        f"{second},李四,390,1501,370100,2021-01-01,,,\n"
        "370102198005061230,王五,390,1501,370100,2021-01-01,,,\n"
        f"{second},李四,999,1501,370100,2021-01-01,,,\n"
        f"{second},李四,392,1501,370100,2021-01-01,12.00,,\n",
        encoding="utf-8")
    return first, second


def test_first_institution_operator_and_people_then_a_real_call(production: dict[str, str], tmp_path: Path) -> None:
    assert cli("db", "upgrade", env=production).returncode == 0
    added = cli("institution", "add", HOSPITAL, "--name", "济南市第九人民医院", "--level", "3", env=production)
    assert added.returncode == 0, added.stderr
    secret = next(line.split()[3] for line in added.stdout.splitlines() if line.startswith("access_key"))
    assert len(secret) == 64
    again = cli("institution", "add", HOSPITAL, "--name", "x", "--level", "3", env=production)
    assert "exists already" in one_line_error(again)
    assert cli("operator", "add", HOSPITAL, "0001", "--name", "收费员", env=production).returncode == 0
    first, _ = people_csv(tmp_path / "people.csv")
    imported = cli("people", "import", str(tmp_path / "people.csv"), env=production)
    assert imported.returncode == 1  # some rows were rejected
    assert "2 people and 3 enrolments added" in imported.stdout and "3 rows rejected" in imported.stdout
    assert "GB 11643" in imported.stdout and "insutype" in imported.stdout and "acct_balance" in imported.stdout
    twice = cli("people", "import", str(tmp_path / "people.csv"), env=production)
    assert "0 people and 0 enrolments added" in twice.stdout and "3 already there" in twice.stdout

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--port", str(port)], env=production, stdout=handle,
                                stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_server(url, proc, log)
            client = CounterClient(url, HOSPITAL, secret, opter="0001")
            assert client.sign_in()["infcode"] == 0
            answer = client.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": first, "psn_cert_type": "01"}})
            assert answer["infcode"] == 0, answer
            assert {i["insutype"] for i in answer["output"]["insuinfo"]} == {"310", "330"}
            assert any(i["balc"] == pytest.approx(1234.50) for i in answer["output"]["insuinfo"])
            # no demo face in production, whatever the environment says
            assert httpx.get(f"{url}/api/v1/demo/face", params={"certno": first}).status_code == 404
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    audit = cli("audit", "--kind", "institution.add", env=production)
    assert HOSPITAL in audit.stdout


def test_secrets_are_encrypted_at_rest(db: Database) -> None:
    from conftest import secret_of

    secret = secret_of("H37010000001")
    with db.engine.connect() as connection:
        stored = connection.execute(text("SELECT secret FROM gateway_client WHERE access_key = 'H37010000001'")).scalar_one()
        channel = connection.execute(text("SELECT secret FROM ec_channel WHERE chnl_id = 'WECHAT'")).scalar_one()
    assert stored.startswith(vault.TEXT_PREFIX) and secret not in stored and channel.startswith(vault.TEXT_PREFIX)
    wrong = vault.Vault(os.urandom(16))
    with pytest.raises(vault.VaultError, match="master key does not open"):
        wrong.open_text(stored, "gateway_client.secret")
    # a ciphertext moved to another column does not open there
    with pytest.raises(vault.VaultError):
        vault.current().open_text(stored, "ec_channel.secret")


def test_qr_keys_are_encrypted_at_rest(db: Database) -> None:
    from yibao.credential import service as credential

    with db.unit_of_work() as session:
        current, _ = credential.keys(session)
    with db.engine.connect() as connection:
        enc_key, mac_key = connection.execute(text("SELECT enc_key, mac_key FROM ec_qr_key WHERE kid = :k"), {"k": current.kid}).one()
    assert bytes(enc_key).startswith(vault.BYTES_PREFIX) and current.enc_key not in bytes(enc_key)
    assert current.mac_key not in bytes(mac_key) and len(bytes(enc_key)) == 1 + 12 + 16 + 16


def test_master_key_file_and_database_are_private(tmp_path: Path) -> None:
    env = {**os.environ, "YIBAO_HOME": str(tmp_path), "YIBAO_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'yibao.db'}"}
    env.pop("YIBAO_MASTER_KEY")
    assert cli("db", "upgrade", env=env).returncode == 0
    key_file = tmp_path / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "db" / "yibao.db").stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 16
    bad = cli("keys", "show", "H37010000001", env={**env, "YIBAO_MASTER_KEY": "zz"})
    assert "YIBAO_MASTER_KEY" in one_line_error(bad)


def test_migration_encrypts_secrets_stored_in_the_clear(tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path)
    database = Database(url)
    try:
        upgrade(database.engine, "0003")
        with database.engine.begin() as connection:
            connection.execute(text("INSERT INTO region (admdvs, name, prov_admdvs) VALUES ('370100', '济南市', '370000')"))
            connection.execute(text("INSERT INTO institution (fixmedins_code, fixmedins_name, fixmedins_type, medins_lv, admdvs, addr, "
                                    "vali_flag) VALUES ('H37010000001', 'h', '1', 3, '370100', '', '1')"))
            connection.execute(text("INSERT INTO gateway_client (access_key, fixmedins_code, secret, active, created_at) "
                                    "VALUES ('H37010000001', 'H37010000001', 'plain-old-secret', :t, :now)"),
                                    {"t": True, "now": clock.now()})
            connection.execute(text("INSERT INTO ec_channel (chnl_id, chnl_name, kind, secret, active) "
                                    "VALUES ('X', 'x', 'bank', 'chan', :t)"), {"t": True})
            connection.execute(text("INSERT INTO ec_qr_key (kid, enc_key, mac_key, created_at) VALUES (1, :e, :m, :now)"),
                               {"e": b"k" * 16, "m": b"m" * 32, "now": clock.now()})
        upgrade(database.engine)
        from yibao.gateway import keys

        with database.unit_of_work(write=False) as session:
            assert keys.active_secret(session, "H37010000001") == "plain-old-secret"
            assert keys.of_institution(session, "H37010000001")[0].schemes == "yibao,csb,tif"  # old keys keep their schemes
        with database.engine.connect() as connection:
            assert "plain-old-secret" not in connection.execute(text("SELECT secret FROM gateway_client")).scalar_one()
            assert connection.execute(text("SELECT secret FROM ec_channel")).scalar_one().startswith(vault.TEXT_PREFIX)
            assert bytes(connection.execute(text("SELECT enc_key FROM ec_qr_key")).scalar_one()) != b"k" * 16
        # and back: a downgrade to 0003 opens every secret again (with the master key) and drops what 0004 added
        from alembic import command

        from yibao.store.migrate import alembic_config

        config = alembic_config(database.engine)
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT secret FROM gateway_client")).scalar_one() == "plain-old-secret"
            assert connection.execute(text("SELECT secret FROM ec_channel")).scalar_one() == "chan"
            assert bytes(connection.execute(text("SELECT enc_key FROM ec_qr_key")).scalar_one()) == b"k" * 16
            assert "audit_event" not in set(connection.dialect.get_table_names(connection))
    finally:
        database.dispose()


def test_key_rotation_commits_and_keeps_the_old_secret_for_the_grace_period(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from litestar.testing import TestClient

    from conftest import secret_of
    from yibao.app import create_app
    from yibao.gateway import keys

    with TestClient(app=create_app(replace(settings, key_cache_s=1.0), db)) as http:
        rotate_and_sign(db, http, secret_of, keys)


def rotate_and_sign(db, http, secret_of, keys) -> None:  # type: ignore[no-untyped-def]
    code = "H37010000003"
    old = secret_of(code)
    client = CounterClient("http://testserver", code, old, http=http)
    assert client.sign_in()["infcode"] == 0
    with db.unit_of_work() as session:
        new = keys.rotate(session, code, grace=timedelta(hours=2)).secret
    assert secret_of(code) == new != old  # committed
    time.sleep(0.3)  # the vendor types the new secret in: by then a miss re-reads the key
    fresh = CounterClient("http://testserver", code, new, http=http)
    assert fresh.sign_in()["infcode"] == 0  # the new secret works at once (the key cache re-reads on a miss)
    assert CounterClient("http://testserver", code, old, http=http).sign_in()["infcode"] == 0  # the old one, in its grace period
    with db.unit_of_work() as session:
        keys.rotate(session, code, grace=timedelta(0))
    time.sleep(1.1)  # a revoked secret stops working when the key cache (YIBAO_KEY_CACHE_S) expires
    refused = CounterClient("http://testserver", code, new, http=http).sign_in()
    assert refused["infcode"] == -1 and "signature does not match" in refused["err_msg"]
    with db.unit_of_work(write=False) as session:
        from yibao.audit import service as audit

        rotations = audit.query(session, kind="key.rotate", subject=code)
    assert len(rotations) == 2


def test_key_rotation_from_the_cli(tmp_path: Path) -> None:
    """`yibao keys rotate` once printed a secret, failed on a foreign key and saved nothing."""
    url = fresh_database_url(tmp_path)
    database = Database(url)
    upgrade(database.engine)
    from yibao.demo.generator import generate

    with database.unit_of_work() as session:
        generate(session, people=20, seed=3, institutions_per_kind=1)
    database.dispose()
    env = {**os.environ, "YIBAO_DATABASE_URL": url}
    rotated = cli("keys", "rotate", "H37010000001", "--grace", "30m", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.split("new secret ")[1].split()[0]
    shown = cli("keys", "show", "H37010000001", env=env)
    assert shown.stdout.split()[3] == new and "previous secret valid until" in shown.stdout
    assert "not a duration" in one_line_error(cli("keys", "rotate", "H37010000001", "--grace", "soon", env=env))


def test_a_key_signs_only_with_its_schemes(db: Database, http) -> None:  # type: ignore[no-untyped-def]
    import base64
    import hashlib
    import hmac

    from conftest import secret_of
    from helpers import encode
    from yibao.gateway import keys

    code = "H37010000002"
    with db.unit_of_work() as session:
        keys.set_schemes(session, code, "yibao")
    time.sleep(1.1)
    client = CounterClient("http://testserver", code, secret_of(code), http=http)
    assert client.sign_in()["infcode"] == 0
    body = encode(client.envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x", "psn_cert_type": "01"}}))
    params = {"_api_name": "hsa.fsi.1101", "_api_version": "1.0.0", "_api_timestamp": str(int(time.time() * 1000)),
              "_api_access_key": code}
    signature = base64.b64encode(hmac.new(secret_of(code).encode(), "&".join(f"{k}={params[k]}" for k in sorted(params)).encode(),
                                          hashlib.sha1).digest()).decode()
    answer = http.post("/fsi/api/rsfComIfsService/callService", content=body,
                       headers={**params, "_api_signature": signature, "content-type": "application/json"}).json()
    assert answer["infcode"] == -1 and "may not sign with the csb scheme" in answer["err_msg"]
    with db.unit_of_work() as session:
        keys.set_schemes(session, code, "yibao,csb,tif")


def test_audit_trail_is_append_only(db: Database) -> None:
    from yibao.audit import service as audit

    with db.unit_of_work() as session:
        audit.record(session, "test.event", actor="pytest", reason="append-only check")
    for statement in ("UPDATE audit_event SET reason = 'changed'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(text(statement))
    with db.unit_of_work(write=False) as session:
        assert audit.query(session, kind="test.event")[0].reason == "append-only check"


def test_acknowledged_means_durable(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    """Production commits to disk before answering; a demo may trade that for speed and says so at start."""
    from yibao.app import create_app
    from yibao.deployment import service as deployment

    if PG_URL:
        with db.engine.connect() as connection:
            assert connection.execute(text("SHOW synchronous_commit")).scalar() == "on"
        return
    production_db = Database(settings.database_url)
    try:
        with production_db.unit_of_work() as session:
            deployment.set_mode(session, deployment.PRODUCTION)
        create_app(settings, production_db)
        with production_db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        with production_db.unit_of_work() as session:
            deployment.set_mode(session, deployment.DEMO)
        create_app(settings, production_db)
        with production_db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        production_db.dispose()


def test_cli_mistakes_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "YIBAO_DATABASE_URL": f"sqlite:///{tmp_path / 'nowhere' / 'yibao.db'}"}
    missing = one_line_error(cli("keys", "show", "H37010000001", env=env, cwd=tmp_path))
    assert "no database at" in missing and not (tmp_path / "nowhere").exists()  # nothing created elsewhere
    default_env = {k: v for k, v in os.environ.items() if k not in ("YIBAO_DATABASE_URL", "YIBAO_HOME")}
    assert "no database at" in one_line_error(cli("ledger", "check", env=default_env, cwd=tmp_path))
    assert not (tmp_path / "var").exists()
    placeholder = one_line_error(cli("call", "1101", "{...}", "--secret", "x", env=env))
    assert "not JSON" in placeholder
    down = one_line_error(cli("call", "1101", "{}", "--secret", "x", "--url", f"http://127.0.0.1:{free_port()}", env=env))
    assert "is `yibao serve` running" in down
    assert "does not exist" in one_line_error(cli("people", "import", str(tmp_path / "none.csv"), env=env))


def test_a_server_installs_without_the_test_tools() -> None:
    """`pip install .` serves: the app and the CLI import nothing from the `dev` extra."""
    blocker = (
        "import sys, importlib.abc\n"
        "DEV = {'pytest', 'hypothesis', 'playwright', 'zxingcpp', 'PIL', 'schemathesis', 'psutil', 'matplotlib', 'xdist'}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in DEV:\n"
        "            raise ImportError('dev package ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import yibao.cli, yibao.app\n"
        "from yibao.config import Settings\n"
        f"app = yibao.app.create_app(Settings(database_url='sqlite:///{secrets.token_hex(4)}-nodev.db'))\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=60, cwd="/tmp")
    assert result.stdout.strip().endswith("ok"), result.stderr
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    runtime = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert not any(tool in runtime for tool in ("pytest", "hypothesis", "playwright", "schemathesis"))


def test_demo_leaves_no_write_ahead_log(tmp_path: Path) -> None:
    if PG_URL:
        pytest.skip("the write-ahead log file is SQLite's")
    env = {**os.environ, "YIBAO_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    assert cli("demo", "--people", "300", env=env).returncode == 0
    wal = tmp_path / "demo.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
