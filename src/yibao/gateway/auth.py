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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from yibao.core import clock, crypto
from yibao.core.errors import AuthError
from yibao.gateway.models import GatewayClient

YB_HEADERS = ("x-yb-access-key", "x-yb-timestamp", "x-yb-nonce", "x-yb-signature")
CSB_HEADERS = ("_api_name", "_api_version", "_api_timestamp", "_api_access_key", "_api_signature")
TIF_HEADERS = ("x-tif-paasid", "x-tif-timestamp", "x-tif-nonce", "x-tif-signature")


@dataclass(frozen=True)
class Caller:
    access_key: str
    fixmedins_code: str
    nonce: str
    scheme: str


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

    def secrets(self) -> tuple[str, ...]:
        """The secrets that sign valid requests right now: the current one, and the previous one in its grace period."""
        if self.previous_secret and self.previous_valid_until and self.previous_valid_until > clock.now():
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def require_scheme(self, scheme: str) -> None:
        if scheme not in self.schemes:
            raise AuthError(f"access key '{self.access_key}' may not sign with the {scheme} scheme "
                            f"(allowed: {', '.join(sorted(self.schemes))}; `yibao keys schemes` changes it)")


class ClientDirectory:
    """Institution keys, read from storage and kept for ``ttl_s`` (a rotated or revoked key takes effect within it).

    Every call needs its caller's key; reading it once per half minute instead of once per call
    keeps a transaction off the hot path.
    """

    def __init__(self, load: Callable[[str], Credentials | None], ttl_s: float = 30.0) -> None:
        self._load, self._ttl = load, ttl_s
        self._cache: dict[str, tuple[float, Credentials | None]] = {}
        self._lock = threading.Lock()

    def get(self, access_key: str, *, refresh: bool = False) -> Credentials:
        """The key's credentials; ``refresh`` re-reads an entry older than a quarter second (a secret rotated since it was
        cached), so a flood of bad signatures costs at most four reads a second per key."""
        now = time.monotonic()
        hit = self._cache.get(access_key)
        if hit is None or now - hit[0] > self._ttl or (refresh and now - hit[0] > 0.25):
            found = self._load(access_key)
            with self._lock:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[access_key] = (now, found)
            hit = (now, found)
        if hit[1] is None:
            raise AuthError(f"unknown or revoked access key '{access_key[:64]}'")
        return hit[1]


def load_from(session_factory: Callable[[], object]) -> Callable[[str], Credentials | None]:
    def load(access_key: str) -> Credentials | None:
        with session_factory() as session:  # type: ignore[attr-defined]
            client = session.get(GatewayClient, access_key)
            if client is None or not client.active:
                return None
            schemes = frozenset(s.strip() for s in (client.schemes or "").split(",") if s.strip())
            return Credentials(client.access_key, client.fixmedins_code, client.secret, schemes, client.previous_secret,
                               client.previous_valid_until)

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
    raise AuthError(mismatch)


def _fresh(timestamp: str, unit_ms: int, window_s: int, header: str) -> None:
    try:
        sent_ms = int(timestamp) * unit_ms
    except ValueError:
        raise AuthError(f"{header} must be a Unix time in {'milliseconds' if unit_ms == 1 else 'seconds'}") from None
    skew = abs(time.time() * 1000 - sent_ms)
    if skew > window_s * 1000:
        raise AuthError(f"{header} is {int(skew // 1000)} s away from the platform clock (allowed {window_s} s): stale or replayed request")


def authenticate(clients: ClientDirectory, headers: Mapping[str, str], body: bytes, query: Mapping[str, str],
                 window_s: int) -> Caller:
    """Verify the signature headers; return the caller. The nonce is checked by the caller's transaction."""
    if "x-yb-signature" in headers:
        missing = [h for h in YB_HEADERS if not headers.get(h)]
        if missing:
            raise AuthError(f"missing signature header(s): {', '.join(missing)}")
        key, ts, nonce, signature = (headers[h] for h in YB_HEADERS)
        _fresh(ts, 1, window_s, "x-yb-timestamp")
        if not 8 <= len(nonce) <= 128:
            raise AuthError("x-yb-nonce must be 8 to 128 characters")
        client = _verified(clients, key, "yibao", lambda secret: crypto.equal(yibao_signature(secret, ts, nonce, body), signature.lower()),
                           "x-yb-signature does not match: sign timestamp + '\\n' + nonce + '\\n' + body with HMAC-SM3")
        return Caller(key, client.fixmedins_code, nonce, "HMAC-SM3")
    if "_api_signature" in headers:
        missing = [h for h in CSB_HEADERS if not headers.get(h)]
        if missing:
            raise AuthError(f"missing CSB header(s): {', '.join(missing)}")
        params = {h: headers[h] for h in CSB_HEADERS if h != "_api_signature"}
        params.update(query)
        _fresh(params["_api_timestamp"], 1, window_s, "_api_timestamp")
        client = _verified(clients, params["_api_access_key"], "csb",
                           lambda secret: crypto.equal(crypto.csb_signature(secret, params), headers["_api_signature"]),
                           "_api_signature does not match (CSB: Base64 HMAC-SHA1 over the sorted _api_* parameters)")
        # CSB carries no nonce: the signature itself is unique per timestamp, so it serves as one.
        return Caller(client.access_key, client.fixmedins_code, "csb:" + headers["_api_signature"], "CSB")
    if "x-tif-signature" in headers:
        missing = [h for h in TIF_HEADERS if not headers.get(h)]
        if missing:
            raise AuthError(f"missing TIF header(s): {', '.join(missing)}")
        key, ts, nonce, signature = (headers[h] for h in TIF_HEADERS)
        _fresh(ts, 1000, window_s, "x-tif-timestamp")
        client = _verified(clients, key, "tif", lambda secret: crypto.equal(crypto.tif_signature(ts, secret, nonce), signature.lower()),
                           "x-tif-signature does not match (TIF: hex SHA-256 of timestamp + token + nonce + timestamp)")
        return Caller(key, client.fixmedins_code, "tif:" + nonce, "TIF")
    raise AuthError("request is not signed: send x-yb-access-key, x-yb-timestamp, x-yb-nonce and x-yb-signature")
