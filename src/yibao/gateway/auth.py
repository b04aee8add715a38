"""Who is calling: institution authentication by signature headers.

yibao's own scheme signs the body: ``x-yb-signature`` = hex(HMAC-SM3(secret, timestamp ⏎ nonce ⏎ body))
with ``x-yb-access-key``, ``x-yb-timestamp`` (Unix ms) and ``x-yb-nonce``. Two foreign schemes
are accepted so unmodified HIS clients connect: Alibaba CSB (``_api_*``) and Tencent TIF
(``x-tif-*``); neither covers the body, which is why yibao's own is preferred.
Every scheme rejects timestamps outside the window and nonces seen before.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from yibao.core import clock, crypto
from yibao.core.errors import AuthError
from yibao.gateway.models import GatewayClient

YB_HEADERS = ("x-yb-access-key", "x-yb-timestamp", "x-yb-nonce", "x-yb-signature")
CSB_HEADERS = ("_api_name", "_api_version", "_api_timestamp", "_api_access_key", "_api_signature")
TIF_HEADERS = ("x-tif-paasid", "x-tif-timestamp", "x-tif-nonce", "x-tif-signature")
# gateway_client.access_key is String(64): a longer key cannot exist, so it is refused before any lookup
MAX_ACCESS_KEY = 64
# gateway_nonce.nonce is String(128) and holds TIF's nonce and CSB's signature behind a 4-character prefix
NONCE_MIN, NONCE_MAX = 8, 128
PREFIXED_MAX = NONCE_MAX - len("tif:")


class Refused(AuthError):
    """Authentication failed. ``reason`` labels the metric; ``fixmedins_code`` is set when the access key is
    known (its owner's audit trail records the failure), empty for a stranger (only counted)."""

    def __init__(self, message: str, reason: str, access_key: str = "", fixmedins_code: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.access_key = access_key
        self.fixmedins_code = fixmedins_code


@dataclass(frozen=True)
class Caller:
    access_key: str
    fixmedins_code: str
    nonce: str
    scheme: str
    # the dialect the key is bound to (gateway/dialect.py; None: the path's)
    dialect: str | None = None
    # the front server that signed for the institution, and the address it came from (gateway/front.py)
    front: str = ""
    peer: str = ""


def yibao_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(secret.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


def sign_headers(access_key: str, secret: str, body: bytes, *, timestamp_ms: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """Headers a client sends with ``body`` (used by yibao's own client and tests)."""
    import secrets as _secrets

    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    nonce = nonce or _secrets.token_hex(16)
    return {
        "x-yb-access-key": access_key,
        "x-yb-timestamp": ts,
        "x-yb-nonce": nonce,
        "x-yb-signature": yibao_signature(secret, ts, nonce, body),
    }


@dataclass(frozen=True)
class Credentials:
    access_key: str
    fixmedins_code: str
    secret: str
    # the signing schemes this key may be used with (gateway.models.SCHEMES)
    schemes: frozenset[str] = frozenset(("yibao",))
    # after a rotation the previous secret works until this moment (Beijing wall time)
    previous_secret: str | None = None
    previous_valid_until: datetime | None = None
    dialect: str | None = None
    front: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The secrets that sign valid requests right now: the current one, and the previous one in its grace period."""
        if self.previous_secret and self.previous_valid_until and self.previous_valid_until > clock.now():
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def require_scheme(self, scheme: str) -> None:
        if scheme not in self.schemes:
            raise Refused(f"access key '{self.access_key}' may not sign with the {scheme} scheme "
                          f"(allowed: {', '.join(sorted(self.schemes))}; `yibao keys schemes` changes it)", "scheme",
                          self.access_key, self.fixmedins_code)


class ClientDirectory:
    """Institution keys, read from storage and kept for ``ttl_s`` (a rotated or revoked key takes effect within it).

    Every call needs its caller's key; reading it once per half minute instead of once per call
    keeps a transaction off the hot path. Both caches are bounded LRUs: known keys (``max_known``), and
    a small one of keys that were not found (``max_misses``, kept a few seconds), so a flood of random
    access keys costs a read each but no memory beyond that bound, and never evicts the real keys.
    """

    def __init__(self, load: Callable[[str], Credentials | None], ttl_s: float = 30.0, *, max_known: int = 10_000,
                 max_misses: int = 256) -> None:
        self._load, self._ttl = load, ttl_s
        self._miss_ttl = min(ttl_s, 5.0)  # a key issued just after a failed try works within seconds
        self._max_known, self._max_misses = max_known, max_misses
        self._known: OrderedDict[str, tuple[float, Credentials]] = OrderedDict()
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._known) + len(self._misses)

    def get(self, access_key: str, *, refresh: bool = False) -> Credentials:
        """The key's credentials; ``refresh`` re-reads an entry older than a quarter second (a secret rotated since it was
        cached), so a flood of bad signatures costs at most four reads a second per key."""
        if len(access_key) > MAX_ACCESS_KEY:
            raise Refused(f"access key is longer than {MAX_ACCESS_KEY} characters", "malformed")
        now = time.monotonic()
        hit = self._known.get(access_key)
        if hit is not None and now - hit[0] <= self._ttl and not (refresh and now - hit[0] > 0.25):
            with self._lock:
                if access_key in self._known:
                    self._known.move_to_end(access_key)
            return hit[1]
        if hit is None:
            missed = self._misses.get(access_key)
            if missed is not None and now - missed <= self._miss_ttl:
                raise _unknown(access_key)
        found = self._load(access_key)
        with self._lock:
            if found is None:
                self._known.pop(access_key, None)
                self._misses[access_key] = now
                self._misses.move_to_end(access_key)
                while len(self._misses) > self._max_misses:
                    self._misses.popitem(last=False)
            else:
                self._misses.pop(access_key, None)
                self._known[access_key] = (now, found)
                self._known.move_to_end(access_key)
                while len(self._known) > self._max_known:
                    self._known.popitem(last=False)
        if found is None:
            raise _unknown(access_key)
        return found


def _unknown(access_key: str) -> Refused:
    return Refused(f"unknown or revoked access key '{access_key}'", "unknown_key")


def load_from(session_factory: Callable[[], object]) -> Callable[[str], Credentials | None]:
    def load(access_key: str) -> Credentials | None:
        with session_factory() as session:  # type: ignore[attr-defined]
            client = session.get(GatewayClient, access_key)
            if client is None or not client.active:
                return None
            schemes = frozenset(s.strip() for s in (client.schemes or "").split(",") if s.strip())
            return Credentials(client.access_key, client.fixmedins_code, client.secret, schemes, client.previous_secret,
                               client.previous_valid_until, client.dialect, client.front_server)

    return load


def _verified(clients: ClientDirectory, access_key: str, scheme: str, matches: Callable[[str], bool], mismatch: str) -> Credentials:
    """The caller's credentials if one of its secrets makes ``matches`` true; a miss re-reads the key once
    (a secret rotated in the last half minute is not in the cache yet)."""
    client = clients.get(access_key)
    client.require_scheme(scheme)
    if any(matches(secret) for secret in client.secrets()):
        return client
    client = clients.get(access_key, refresh=True)
    client.require_scheme(scheme)
    if any(matches(secret) for secret in client.secrets()):
        return client
    raise Refused(mismatch, "signature", client.access_key, client.fixmedins_code)


def _fresh(timestamp: str, unit_ms: int, window_s: int, header: str) -> None:
    try:
        sent_ms = int(timestamp[:20]) * unit_ms
    except ValueError:
        raise Refused(f"{header} must be a Unix time in {'milliseconds' if unit_ms == 1 else 'seconds'}", "malformed") from None
    skew_ms = sent_ms - time.time() * 1000
    if abs(skew_ms) > window_s * 1000:
        # Most refusals here are a counter PC's clock, not an attack: say by how much and which way, and what allows more.
        way = "ahead of" if skew_ms > 0 else "behind"
        raise Refused(f"{header} is {int(abs(skew_ms) // 1000)} s {way} the platform clock (allowed ±{window_s} s, "
                      "YIBAO_SIGNATURE_WINDOW_S): set the counter's clock, or the request is stale", "stale")


def csb_nonce(signature: str, body: bytes) -> str:
    """What stands for a nonce under CSB, which carries none: SM3 of the signature and the body.

    The signature covers only the key, the service name and the millisecond timestamp, so two counters of one
    institution sending the same transaction in the same millisecond sign identically; with the body in the nonce both
    are served (their bodies differ, if only in the msgid), while the same bytes sent again are still a replay. What
    keeps a CSB request from being replayed later is the timestamp window; a retry is answered by its msgid."""
    return "csb:" + crypto.sm3_hex(signature.encode() + b"\n" + body)


def _bounded(key: str, header: str) -> None:
    if len(key) > MAX_ACCESS_KEY:
        raise Refused(f"{header} is longer than {MAX_ACCESS_KEY} characters", "malformed")


def _nonce(nonce: str, header: str, longest: int = NONCE_MAX, shortest: int = NONCE_MIN) -> None:
    if not shortest <= len(nonce) <= longest:
        raise Refused(f"{header} must be {shortest} to {longest} characters", "malformed")


# the headers that name each scheme, in the order they are recognised
SCHEME_MARKERS = (("front", "x-yb-front-signature"), ("yibao", "x-yb-signature"), ("csb", "_api_signature"), ("tif", "x-tif-signature"))


def authenticate(clients: ClientDirectory, headers: Mapping[str, str], body: bytes, query: Mapping[str, str],
                 window_s: int, *, schemes: frozenset[str] | None = None, tif_nonce_min: int | None = None,
                 fronts: object = None, client_ip: str = "") -> Caller:
    """Verify the signature headers; return the caller. The nonce is checked by the caller's transaction.

    Every failure is a `Refused`: cheap checks (lengths, clock) come before the key is looked up. A dialect's paths
    may accept only some ``schemes`` and shorter TIF nonces (``tif_nonce_min``, gateway/dialect.py); a front server
    signs for institutions that trust it (gateway/front.py, ``fronts``), from its own address (``client_ip``).
    """
    if schemes is not None:
        used = next((name for name, marker in SCHEME_MARKERS if marker in headers), None)
        if used is None:
            raise Refused(f"request is not signed: this path takes {' or '.join(sorted(schemes))} signature headers", "unsigned")
        if used not in schemes:
            raise Refused(f"this path takes {' or '.join(sorted(schemes))} signature headers, not {used}", "scheme")
    if "x-yb-front-signature" in headers:
        from yibao.gateway import front

        return front.authenticate(fronts, clients, headers, body, window_s, client_ip)  # type: ignore[arg-type]
    if "x-yb-signature" in headers:
        missing = [h for h in YB_HEADERS if not headers.get(h)]
        if missing:
            raise Refused(f"missing signature header(s): {', '.join(missing)}", "malformed")
        key, ts, nonce, signature = (headers[h] for h in YB_HEADERS)
        _bounded(key, "x-yb-access-key")
        _fresh(ts, 1, window_s, "x-yb-timestamp")
        _nonce(nonce, "x-yb-nonce")
        client = _verified(clients, key, "yibao", lambda secret: crypto.equal(yibao_signature(secret, ts, nonce, body), signature.lower()),
                           "x-yb-signature does not match: sign timestamp + '\\n' + nonce + '\\n' + body with HMAC-SM3")
        return Caller(key, client.fixmedins_code, nonce, "HMAC-SM3", client.dialect)
    if "_api_signature" in headers:
        missing = [h for h in CSB_HEADERS if not headers.get(h)]
        if missing:
            raise Refused(f"missing CSB header(s): {', '.join(missing)}", "malformed")
        params = {h: headers[h] for h in CSB_HEADERS if h != "_api_signature"}
        params.update(query)
        _bounded(params["_api_access_key"], "_api_access_key")
        if len(headers["_api_signature"]) > PREFIXED_MAX:  # a Base64 HMAC-SHA1 is 28 characters: anything this long is not one
            raise Refused(f"_api_signature is longer than {PREFIXED_MAX} characters", "malformed")
        _fresh(params["_api_timestamp"], 1, window_s, "_api_timestamp")
        client = _verified(clients, params["_api_access_key"], "csb",
                           lambda secret: crypto.equal(crypto.csb_signature(secret, params), headers["_api_signature"]),
                           "_api_signature does not match (CSB: Base64 HMAC-SHA1 over the sorted _api_* parameters)")
        return Caller(client.access_key, client.fixmedins_code, csb_nonce(headers["_api_signature"], body), "CSB", client.dialect)
    if "x-tif-signature" in headers:
        missing = [h for h in TIF_HEADERS if not headers.get(h)]
        if missing:
            raise Refused(f"missing TIF header(s): {', '.join(missing)}", "malformed")
        key, ts, nonce, signature = (headers[h] for h in TIF_HEADERS)
        _bounded(key, "x-tif-paasid")
        _fresh(ts, 1000, window_s, "x-tif-timestamp")
        _nonce(nonce, "x-tif-nonce", PREFIXED_MAX, tif_nonce_min or NONCE_MIN)
        client = _verified(clients, key, "tif", lambda secret: crypto.equal(crypto.tif_signature(ts, secret, nonce), signature.lower()),
                           "x-tif-signature does not match (TIF: hex SHA-256 of timestamp + token + nonce + timestamp)")
        # the signature covers (timestamp, nonce): a nonce shorter than the usual minimum (a dialect allows it) is unique only
        # together with its second, so it is recorded with it
        used = nonce if len(nonce) >= NONCE_MIN else f"{ts[:20]}:{nonce}"
        return Caller(key, client.fixmedins_code, "tif:" + used, "TIF", client.dialect)
    raise Refused("request is not signed: send x-yb-access-key, x-yb-timestamp, x-yb-nonce and x-yb-signature", "unsigned")
