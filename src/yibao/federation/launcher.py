"""`yibao federation up` / `down`: a hub and two province nodes on one machine, as separate processes on loopback,
each on its own PostgreSQL database (one throwaway cluster), with a JetStream nats-server between them.

Everything lives in one folder (default var/federation): the cluster, the nats store, each process's log, and
federation.json (ports, process ids, database URLs) that `down` and the tests read. Keys are random per start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

PROVINCES = ("370100", "440300")
STATE = "federation.json"


@dataclass
class Process:
    name: str
    pid: int
    port: int
    url: str
    database_url: str
    region: str = ""
    log: str = ""


@dataclass
class Layout:
    folder: str
    pg_bin: str
    pg_port: int
    nats_port: int
    nats_pid: int = 0
    # the cluster's own folder, outside ``folder`` (whose parents the postgres user may not be able to enter)
    pg_dir: str = ""
    processes: list[Process] = field(default_factory=list)

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> str:
    for found in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (found / "initdb").exists():
            return str(found)
    raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql-15 (scripts/pg.sh does it for the tests)")


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout).strip()[-300:]}")


def start_postgres(port: int, fsync: bool) -> tuple[str, str]:
    """A throwaway cluster in a folder of its own (the postgres user owns it); its binaries' folder and the folder."""
    bin_dir = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="yibao-federation-pg."))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    _run(_as_owner([f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]), "initdb")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync={'on' if fsync else 'off'}"
    _run(_as_owner([f"{bin_dir}/pg_ctl", "-D", str(data), "-l", str(folder / "pg.log"), "-w", "-o", options, "start"]), "pg_ctl start")
    for name in ("hub", *PROVINCES):
        _run(_as_owner([f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", f"yibao_{name}"]), "createdb")
    return bin_dir, str(folder)


def start_nats(folder: Path, port: int) -> int:
    binary = shutil.which("nats-server")
    if binary is None:
        raise RuntimeError("nats-server is not installed: apt-get install -y nats-server")
    store = folder / "nats"
    store.mkdir(parents=True, exist_ok=True)
    log = open(folder / "nats.log", "ab")  # noqa: SIM115 - the server keeps writing to it
    process = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)], stdout=log, stderr=log,
                               start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process.pid
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nats-server did not start (see {folder / 'nats.log'})")


def start_yibao(folder: Path, name: str, port: int, env: dict[str, str], people: int) -> Process:
    log_path = folder / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the server keeps writing to it
    command = [sys.executable, "-m", "yibao", "serve", "--port", str(port), "--people", str(people)]
    if name != "hub":
        command.append("--demo")
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True)
    return Process(name, process.pid, port, f"http://127.0.0.1:{port}", env["YIBAO_DATABASE_URL"], env.get("YIBAO_PLATFORM_ADMDVS", ""),
                   str(log_path))


def wait_healthy(process: Process, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{process.url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not _alive(process.pid):
            raise RuntimeError(f"{process.name} stopped while starting: {Path(process.log).read_text(errors='replace')[-800:]}")
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} did not answer /health within {seconds:.0f} s (see {process.log})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def node_env(layout: Layout, region: str, hub_url: str, key: str, **extra: str) -> dict[str, str]:
    return {"YIBAO_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{layout.pg_port}/yibao_{region}",
            "YIBAO_PLATFORM_ADMDVS": region, "YIBAO_DEMO_REGIONS": region, "YIBAO_FEDERATION_ROLE": "node",
            "YIBAO_FEDERATION_HUB": hub_url, "YIBAO_FEDERATION_KEY": key,
            "YIBAO_NATS_URL": f"nats://127.0.0.1:{layout.nats_port}", **extra}


def up(folder: Path, *, people: int = 2000, fsync: bool = True, extra_env: dict[str, str] | None = None,
       say: Callable[[str], None] = print, hub_reaches: dict[str, int] | None = None) -> Layout:
    """Start the federation; its layout is written to ``folder``/federation.json. ``hub_reaches``: region → the port
    the hub calls that node on instead of its own (a test puts a faulty network there)."""
    if (folder / STATE).exists():
        raise RuntimeError(f"a federation is already up in {folder} (yibao federation down --dir {folder})")
    layout = Layout(str(folder.resolve()), "", free_port(), free_port())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        layout.pg_bin, layout.pg_dir = start_postgres(layout.pg_port, fsync)
        say(f"PostgreSQL on 127.0.0.1:{layout.pg_port} (databases yibao_hub, {', '.join('yibao_' + p for p in PROVINCES)})")
        layout.nats_pid = start_nats(folder, layout.nats_port)
        say(f"nats-server (JetStream) on 127.0.0.1:{layout.nats_port}")
        keys = {region: secrets.token_hex(32) for region in PROVINCES}
        ports = {name: free_port() for name in ("hub", *PROVINCES)}
        hub_url = f"http://127.0.0.1:{ports['hub']}"
        extra = extra_env or {}
        hub_env = {"YIBAO_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{layout.pg_port}/yibao_hub",
                   "YIBAO_FEDERATION_ROLE": "hub", "YIBAO_NATS_URL": f"nats://127.0.0.1:{layout.nats_port}",
                   "YIBAO_FEDERATION_NODES": ",".join(f"{r}=http://127.0.0.1:{(hub_reaches or {}).get(r, ports[r])}#{keys[r]}"
                                                      for r in PROVINCES), **extra}
        layout.processes.append(start_yibao(folder, "hub", ports["hub"], hub_env, 0))
        for region in PROVINCES:
            layout.processes.append(start_yibao(folder, region, ports[region], node_env(layout, region, hub_url, keys[region], **extra),
                                                people))
        _save(folder, layout, keys)
        for process in layout.processes:
            wait_healthy(process)
            say(f"{process.name:>6} {process.url} (log {process.log})")
        return layout
    except BaseException:
        if (folder / STATE).exists():
            down(folder, say=lambda _text: None)
        else:
            _stop_all(layout)
        raise


def _save(folder: Path, layout: Layout, keys: dict[str, str]) -> None:
    path = folder / STATE
    path.write_text(json.dumps({**asdict(layout), "keys": keys}, indent=2))
    path.chmod(0o600)  # the node keys: root's only


def load(folder: Path) -> tuple[Layout, dict[str, str]]:
    data = json.loads((folder / STATE).read_text())
    keys = data.pop("keys", {})
    processes = [Process(**p) for p in data.pop("processes")]
    return Layout(**data, processes=processes), keys


def restart(folder: Path, name: str, env_extra: dict[str, str] | None = None) -> Process:
    """Start one process of the federation again (after it was killed), with the environment it had."""
    layout, keys = load(folder)
    old = layout.process(name)
    hub = layout.process("hub")
    env = node_env(layout, name, hub.url, keys[name], **(env_extra or {}))
    process = start_yibao(folder, name, old.port, env, 0)
    layout.processes = [process if p.name == name else p for p in layout.processes]
    _save(folder, layout, keys)
    wait_healthy(process)
    return process


def restart_nats(folder: Path) -> int:
    """Start nats-server again on its port and store (after it was stopped): the streams and consumers are as they were."""
    layout, keys = load(folder)
    layout.nats_pid = start_nats(folder, layout.nats_port)
    _save(folder, layout, keys)
    return layout.nats_pid


def _stop(pid: int) -> None:
    if not pid or not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _stop_all(layout: Layout) -> None:
    for process in layout.processes:
        _stop(process.pid)
    _stop(layout.nats_pid)
    if layout.pg_bin and layout.pg_dir:
        subprocess.run(_as_owner([f"{layout.pg_bin}/pg_ctl", "-D", f"{layout.pg_dir}/data", "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(layout.pg_dir, ignore_errors=True)


def down(folder: Path, *, say: Callable[[str], None] = print) -> None:
    """Stop every process and the cluster, and remove the folder's data (logs stay until the folder is removed)."""
    if not (folder / STATE).exists():
        raise RuntimeError(f"no federation is up in {folder}")
    layout, _keys = load(folder)
    _stop_all(layout)
    shutil.rmtree(folder / "nats", ignore_errors=True)
    (folder / STATE).unlink()
    say(f"federation in {folder} stopped")
