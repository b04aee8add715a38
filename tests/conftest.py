"""Fixtures: every test module gets its own database on the engine under test.

Without YIBAO_TEST_DATABASE_URL the suite runs on SQLite files; with it (a PostgreSQL URL
to a maintenance database, set by scripts/test.sh) each module gets a fresh PostgreSQL
database, so the same tests prove both engines.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from yibao.app import create_app
from yibao.client import CounterClient
from yibao.config import Settings
from yibao.demo.generator import generate
from yibao.store.db import Database
from yibao.store.migrate import upgrade

# the `browser` fixture (Debian's Chromium through Playwright) for the browser tests
pytest_plugins = ["browser_support"]

PG_URL = os.environ.get("YIBAO_TEST_DATABASE_URL", "")
# One master key for the test run, shared with the servers the tests start (they inherit the environment).
os.environ.setdefault("YIBAO_MASTER_KEY", secrets.token_hex(16))
# The database of the module that is running: demo secrets are random, so tests read them from it.
_CURRENT: dict[str, Database] = {}
SEED = 4242
ON = date(2026, 11, 1)
HOSPITAL = "H37010000001"  # level 3 in region 370100
PHARMACY_OTHER_REGION = "P44030000007"


def engine_name() -> str:
    return "postgresql" if PG_URL else "sqlite"


def fresh_database_url(tmp_path: Path) -> str:
    if not PG_URL:
        return f"sqlite:///{tmp_path / 'yibao.db'}"
    name = f"yibao_t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return fresh_database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, platform_admdvs="370100", max_body_bytes=256 * 1024)


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    upgrade(database.engine)
    with database.unit_of_work() as session:
        generate(session, people=400, seed=SEED, on=ON, institutions_per_kind=2)
    _CURRENT["db"] = database
    yield database
    _CURRENT.pop("db", None)
    database.dispose()


@pytest.fixture(scope="module")
def http(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings, db)) as client:
        yield client


def secret_of(code: str, db: Database | None = None) -> str:
    """An institution's gateway secret, read from the database (random, encrypted at rest)."""
    from yibao.gateway import keys

    with (db or _CURRENT["db"]).unit_of_work(write=False) as session:
        secret = keys.active_secret(session, code)
    assert secret, f"no key for {code}"
    return secret


def channel_secret_of(chnl_id: str, db: Database | None = None) -> str:
    from yibao.credential.models import Channel

    with (db or _CURRENT["db"]).unit_of_work(write=False) as session:
        channel = session.get(Channel, chnl_id)
        assert channel is not None
        return channel.secret


@pytest.fixture
def counter(http: TestClient) -> CounterClient:
    """A signed-in counter of the level-3 demo hospital."""
    client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    answer = client.sign_in()
    assert answer["infcode"] == 0, answer
    return client


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for the servers tests start. Not bind(0): that takes a port from the kernel's ephemeral range, which every
# outgoing connection (httpx, PostgreSQL) of every test process also draws from, so the port could be taken between
# this check and the server's own bind, or a stale server of another run could be the one answering. Below that
# range, each pytest-xdist worker has a band of its own (two workers never pick the same port), chosen at random
# within it (other test runs on the machine) with the secrets module (pytest-randomly reseeds `random` per test).
_BAND = 2000


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker[2:].isdigit() else 0
    low = 10000
    bands = (_ephemeral_low() - low) // _BAND
    if bands < 1:  # an unusual ephemeral range that starts low: let the kernel choose
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    start = low + (index % bands) * _BAND
    for _ in range(200):
        port = start + secrets.randbelow(_BAND)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {start}..{start + _BAND - 1}")


def wait_for_server(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 120) -> None:  # type: ignore[type-arg]
    """Until ``url``/health answers; a server that does not come up is killed and its log is the failure."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:  # it exited (a port taken after all): whatever answers on the port is not it
            raise AssertionError(log_path.read_text())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(log_path.read_text())


# A real server (two worker processes) on the module's database, for concurrent clients and examples.
@pytest.fixture(scope="module")
def live_server(settings, db, tmp_path_factory, request) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "YIBAO_DATABASE_URL": settings.database_url, **getattr(request.module, "SERVER_ENV", {})}
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = log_path.open("w")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_server(url, proc, log_path)
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


