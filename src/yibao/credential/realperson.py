"""Real-person checks (实人认证) behind one interface.

Production: a face-verification provider configured with ``YIBAO_FACE_PROVIDER`` (its URL) and
``YIBAO_FACE_PROVIDER_KEY`` (a key both sides hold), optionally ``YIBAO_FACE_MIN_SCORE`` (0.8) and
``YIBAO_FACE_TIMEOUT_S`` (5). The platform POSTs ``{"certno", "name", "face"}`` — ``face`` is what the
app sent: the live image or the liveness token of the vendor's SDK — signed like the national
gateway: ``x-yb-timestamp`` (Unix ms), ``x-yb-nonce`` and ``x-yb-signature`` = hex HMAC-SM3(key,
timestamp ⏎ nonce ⏎ body). The provider answers 200 with ``{"match", "live", "score", "reason"}``,
signed the same way over its own timestamp, *our* nonce and its body, so an answer cannot be
forged on the way or replayed for another request. Anything else — a timeout, a 5xx, a refusal of
our signature, an unsigned or malformed answer — is ``Unavailable`` (503): never a pass.

Demo: a demo database (and only a demo database) without a configured provider uses the
deterministic checker: a person's "face" is a token derived from their ID number (`demo_face`),
and the app's own liveness figure passes at 0.8 or more. A production database without a provider
has no real-person check at all, so activation and password reset are refused (`NotConfigured`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
import msgspec
import structlog
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core import crypto
from yibao.core.errors import YibaoError

log = structlog.get_logger("yibao.realperson")

# a verdict is a few dozen bytes: a provider that sends more is broken, and we do not hold it
MAX_ANSWER_BYTES = 64 * 1024
# checks in flight per process: a slow provider must not take every worker thread (the rest get a 503 at once)
MAX_IN_FLIGHT = 16


@dataclass(frozen=True)
class FaceResult:
    matched: bool
    live: bool
    score: float
    reason: str = ""


class RealPersonProvider(Protocol):
    def verify(self, certno: str, name: str, face: str, liveness_score: float) -> FaceResult: ...


class Unavailable(YibaoError):
    """The provider could not give a verdict; the person may retry later."""

    http_status = 503

    def __init__(self, cause: str) -> None:
        self.reason = "realperson-unavailable"
        self.cause = cause  # for the log and the audit trail, never shown
        super().__init__("实人认证服务暂时不可用，请稍后再试")


class NotConfigured(YibaoError):
    """A production database with no provider: nothing may pass a real-person check."""

    http_status = 503

    def __init__(self) -> None:
        self.reason = "realperson-not-configured"
        self.cause = "no YIBAO_FACE_PROVIDER"
        super().__init__("实人认证服务尚未配置，暂时无法激活医保码或重置密码，请联系医保经办机构")


def demo_face(certno: str) -> str:
    """What the deterministic provider accepts as this person's face (the demo app's 'camera')."""
    return "face:" + crypto.sm3_hex(f"yibao-face|{certno.upper()}".encode())[:24]


class DeterministicProvider:
    """The demo's checker. Never used with a production database."""

    threshold = 0.8

    def verify(self, certno: str, name: str, face: str, liveness_score: float) -> FaceResult:
        if not liveness_score >= self.threshold:
            return FaceResult(False, False, liveness_score, f"liveness {liveness_score:.2f} is below {self.threshold}")
        if not crypto.equal(face, demo_face(certno.strip())):
            return FaceResult(False, True, 0.0, "the face does not match the person's photo")
        return FaceResult(True, True, 0.99)


class Verdict(msgspec.Struct, forbid_unknown_fields=False):
    match: bool
    live: bool
    score: float
    reason: str = ""


def sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


class HttpProvider:
    """A face-verification vendor over HTTP(S), signed both ways (see the module's docstring)."""

    def __init__(self, url: str, key: str, *, min_score: float = 0.8, timeout_s: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not key:
            raise ValueError("YIBAO_FACE_PROVIDER_KEY is required with YIBAO_FACE_PROVIDER")
        self.url, self._key, self.min_score, self.timeout_s = url, key, min_score, timeout_s
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, transport=transport)
        self._in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    def __repr__(self) -> str:  # never the key
        return f"HttpProvider({self.url!r})"

    def verify(self, certno: str, name: str, face: str, liveness_score: float) -> FaceResult:
        if not self._in_flight.acquire(blocking=False):
            raise Unavailable(f"{MAX_IN_FLIGHT} checks already waiting for the provider")
        try:
            return self._verify(certno, name, face)
        finally:
            self._in_flight.release()

    def _verify(self, certno: str, name: str, face: str) -> FaceResult:
        # the app's own liveness figure is not evidence: the provider judges liveness from the face it receives
        body = json.dumps({"certno": certno.strip().upper(), "name": name.strip(), "face": face}, ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        headers = {"content-type": "application/json; charset=utf-8", "x-yb-timestamp": timestamp, "x-yb-nonce": nonce,
                   "x-yb-signature": sign(self._key, timestamp, nonce, body)}
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._client.stream("POST", self.url, content=body, headers=headers) as reply:
                if reply.status_code != 200:
                    raise Unavailable(f"provider answered HTTP {reply.status_code}")
                answer = bytearray()
                for chunk in reply.iter_bytes():
                    answer += chunk
                    if len(answer) > MAX_ANSWER_BYTES:
                        raise Unavailable("provider answer too large")
                    if time.monotonic() > deadline:  # a provider dripping bytes must not hold us past the timeout
                        raise Unavailable("provider answer too slow")
                answered_at, signature = reply.headers.get("x-yb-timestamp", ""), reply.headers.get("x-yb-signature", "")
        except httpx.TimeoutException:
            raise Unavailable("provider timed out") from None
        except httpx.HTTPError as error:
            raise Unavailable(f"provider unreachable: {type(error).__name__}") from None
        if not signature or not crypto.equal(sign(self._key, answered_at, nonce, bytes(answer)), signature.lower()):
            raise Unavailable("provider answer is not signed with our key for this request")
        try:
            verdict = msgspec.json.decode(bytes(answer), type=Verdict)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError) as error:
            raise Unavailable(f"provider answer is not a verdict: {str(error)[:100]}") from None
        if not 0.0 <= verdict.score <= 1.0:
            raise Unavailable("provider score outside 0..1")
        matched = verdict.match and verdict.score >= self.min_score
        return FaceResult(matched, verdict.live, verdict.score, verdict.reason[:200])

    def close(self) -> None:
        self._client.close()


_HTTP: dict[tuple[str, str, float, float], HttpProvider] = {}
_HTTP_LOCK = threading.Lock()


def _http_provider(settings: Settings) -> HttpProvider:
    """One client per configuration and process, so connections to the provider are reused."""
    config = (settings.face_provider_url, settings.face_provider_key, settings.face_min_score, settings.face_timeout_s)
    with _HTTP_LOCK:
        found = _HTTP.get(config)
        if found is None:
            found = _HTTP[config] = HttpProvider(config[0], config[1], min_score=config[2], timeout_s=config[3])
        return found


def provider(session: Session, settings: Settings) -> RealPersonProvider:
    """The checker for this database: the configured provider; else the demo's, in a demo database only; else 503."""
    from yibao.deployment import service as deployment

    if settings.face_provider_url:
        return _http_provider(settings)
    if deployment.mode(session) == deployment.DEMO:
        return DeterministicProvider()
    raise NotConfigured()


def demo_faces_available(session: Session, settings: Settings) -> bool:
    """Whether `GET /api/v1/demo/face` exists: a demo database using the deterministic checker."""
    from yibao.deployment import service as deployment

    return not settings.face_provider_url and deployment.mode(session) == deployment.DEMO
