"""Front servers (前置机): a machine on the medical-insurance private network that signs for hospitals.

Many hospitals reach the platform through a front server, so the HIS itself sends nothing signed. The front
server holds a secret of its own and signs every request it forwards:

    x-yb-front-id         its name (`yibao front add NAME`)
    x-yb-access-key       the key of the institution it forwards for
    x-yb-timestamp        Unix milliseconds
    x-yb-nonce            8 to 124 characters, never reused within the window
    x-yb-front-signature  hex HMAC-SM3(front secret, timestamp ⏎ nonce ⏎ access key ⏎ body)

The platform accepts such a request only when all of these hold: the front server is known and active, the request
comes from its configured address (the TCP peer; forwarded-for headers are not trusted, anyone can write them), the
signature is its own, and the institution's key trusts exactly this front server (`yibao keys trust-front`; no key
trusts one by default). Every such call is written to the audit trail as ``gateway.via_front`` (gateway/service.py).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.core import clock, crypto
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.gateway import auth
from yibao.gateway.models import FrontServer, GatewayClient

log = structlog.get_logger("yibao.gateway.front")
FRONT_HEADERS = ("x-yb-front-id", "x-yb-access-key", "x-yb-timestamp", "x-yb-nonce", "x-yb-front-signature")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
# a secret given on the command line must be at least this long (a generated one is 64 hex characters)
MIN_SECRET = 32


def front_signature(secret: str, timestamp: str, nonce: str, access_key: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(secret.encode(), f"{timestamp}\n{nonce}\n{access_key}\n".encode() + body)


def sign_headers(front_id: str, secret: str, access_key: str, body: bytes, *, timestamp_ms: int | None = None,
                 nonce: str | None = None) -> dict[str, str]:
    """Headers a front server adds to a request it forwards for ``access_key`` (used by tests and examples)."""
    import secrets as _secrets

    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    nonce = nonce or _secrets.token_hex(16)
    return {"x-yb-front-id": front_id, "x-yb-access-key": access_key, "x-yb-timestamp": ts, "x-yb-nonce": nonce,
            "x-yb-front-signature": front_signature(secret, ts, nonce, access_key, body)}


def network(address: str, field: str = "address") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(address.strip(), strict=False)
    except ValueError:
        raise InputError(f"'{address}' is not an IP address or network (10.1.2.3, 10.1.2.0/28)", field=field) from None


@dataclass(frozen=True)
class Front:
    name: str
    address: str
    secret: str
    active: bool

    def admits(self, client_ip: str) -> bool:
        try:
            return ipaddress.ip_address(client_ip) in network(self.address)
        except (ValueError, InputError):
            return False


class FrontDirectory:
    """Front servers by name, read from storage and kept for ``ttl_s`` (a change takes effect within it), bounded."""

    def __init__(self, load: Callable[[str], Front | None], ttl_s: float = 30.0, max_entries: int = 1000) -> None:
        self._load, self._ttl, self._max = load, ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[float, Front | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, *, refresh: bool = False) -> Front | None:
        now = time.monotonic()
        hit = self._entries.get(name)
        if hit is not None and now - hit[0] <= self._ttl and not (refresh and now - hit[0] > 0.25):
            return hit[1]
        found = self._load(name)
        with self._lock:
            self._entries[name] = (now, found)
            self._entries.move_to_end(name)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return found


def load_from(session_factory: Callable[[], object]) -> Callable[[str], Front | None]:
    def load(name: str) -> Front | None:
        with session_factory() as session:  # type: ignore[attr-defined]
            row = session.get(FrontServer, name)
            return None if row is None else Front(row.name, row.address, row.secret, row.active)

    return load


def authenticate(fronts: FrontDirectory | None, clients: auth.ClientDirectory, headers: Mapping[str, str], body: bytes,
                 window_s: int, client_ip: str) -> auth.Caller:
    """The institution a front server forwards for, when every check passes (module docstring); else `auth.Refused`."""
    missing = [h for h in FRONT_HEADERS if not headers.get(h)]
    if missing:
        raise auth.Refused(f"missing front-server header(s): {', '.join(missing)}", "malformed")
    name, key, ts, nonce, signature = (headers[h] for h in FRONT_HEADERS)
    if not NAME.match(name):
        raise auth.Refused("x-yb-front-id is not a front server's name", "malformed")
    auth._bounded(key, "x-yb-access-key")
    auth._fresh(ts, 1, window_s, "x-yb-timestamp")
    auth._nonce(nonce, "x-yb-nonce", auth.PREFIXED_MAX)
    front = fronts.get(name) if fronts is not None else None
    # one answer for an unknown name and a wrong address: an unsigned caller learns neither which front servers exist
    # nor where one is configured (the log has the details)
    if front is None or not front.active or not front.admits(client_ip):
        log.info("front server refused", front=name, reason="unknown or inactive" if front is None or not front.active else "address",
                 came_from=client_ip)
        raise auth.Refused("not a front server of the platform at this address", "front_address")
    if not crypto.equal(front_signature(front.secret, ts, nonce, key, body), signature.lower()):
        front = fronts.get(name, refresh=True) if fronts is not None else None  # a secret changed in the last half minute
        if front is None or not crypto.equal(front_signature(front.secret, ts, nonce, key, body), signature.lower()):
            raise auth.Refused(f"x-yb-front-signature does not match the secret of front server '{name}' (HMAC-SM3 over timestamp, "
                               "nonce, access key and body, each line ended by '\\n' but the body)", "signature")
    client = clients.get(key)
    if client.front != name:
        client = clients.get(key, refresh=True)  # trusted in the last half minute
    if client.front != name:
        raise auth.Refused(f"access key '{key}' does not trust front server '{name}' (`yibao keys trust-front {key} {name}`)",
                           "front_untrusted", client.access_key, client.fixmedins_code)
    return auth.Caller(client.access_key, client.fixmedins_code, "front:" + nonce, "FRONT", client.dialect, name, client_ip)


# -- administration (`yibao front add`, `yibao keys trust-front`) ---------------------------------------

@dataclass(frozen=True)
class FrontView:
    name: str
    address: str
    secret: str
    active: bool
    trusted_by: tuple[str, ...] = ()


def add(session: Session, name: str, address: str, *, secret: str | None = None, actor: str = "cli") -> FrontView:
    """A front server and its secret (generated unless given); it signs for no one until a key trusts it."""
    if not NAME.match(name or "") or name.lower() == "none":
        raise InputError("is 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit (not 'none')", field="name")
    where = str(network(address))
    if secret is not None and len(secret) < MIN_SECRET:
        raise InputError(f"must be at least {MIN_SECRET} characters (leave it out and one is generated)", field="secret")
    if session.get(FrontServer, name) is not None:
        raise Conflict(f"front server {name} exists already", field="name")
    row = FrontServer(name=name, address=where, secret=secret or crypto.new_secret(), active=True, created_at=clock.now())
    session.add(row)
    session.flush()
    audit.record(session, "front.add", actor=actor, subject=name, reason=f"address {where}")
    return FrontView(row.name, row.address, row.secret, row.active)


def all_fronts(session: Session) -> list[FrontView]:
    trusted: dict[str, list[str]] = {}
    for key, front_name in session.execute(select(GatewayClient.access_key, GatewayClient.front_server)
                                           .where(GatewayClient.front_server.is_not(None)).order_by(GatewayClient.access_key)):
        if front_name is not None:
            trusted.setdefault(front_name, []).append(key)
    return [FrontView(f.name, f.address, f.secret, f.active, tuple(trusted.get(f.name, ())))
            for f in session.scalars(select(FrontServer).order_by(FrontServer.name))]


def require(session: Session, name: str) -> FrontServer:
    row = session.get(FrontServer, name)
    if row is None:
        raise NotFound(f"no front server {name} (`yibao front add` adds one)", field="name")
    return row
