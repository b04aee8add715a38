"""The payment channel: how the own-money part of a mobile payment (psn_cash_pay) is taken and given back.

Production: a payment provider configured with ``YIBAO_PAY_PROVIDER`` (its base URL), ``YIBAO_PAY_MERCHANT``
(our merchant number there), ``YIBAO_PAY_KEY`` (the HMAC-SM3 key both sides hold), ``YIBAO_PAY_NOTIFY_URL`` (where
it posts callbacks: this platform's ``/api/v1/payment/callback``) and ``YIBAO_PAY_TIMEOUT_S`` (10).

The protocol (ours; docs/mobile-payment.md): JSON over HTTPS, every request and answer signed like the face provider's
(``x-yb-timestamp`` Unix ms, ``x-yb-nonce``, ``x-yb-signature`` = hex HMAC-SM3(key, timestamp ⏎ nonce ⏎ body); an answer
is signed over its own timestamp, *our* nonce and its body).

- ``POST {base}/pay`` ``{merchant_id, trade_no, amount, subject, notify_url}`` → ``{status: SUCCESS | REFUSED, txn_id,
  reason}``. No answer within the timeout is a timeout: the platform rolls the settlement back, and a success the
  provider reports later (its callback) is refunded.
- ``POST {base}/refund`` ``{merchant_id, trade_no, txn_id, refund_no, amount}`` → ``{status: SUCCESS | FAILED, reason}``.
- The provider's callback to ``notify_url``: ``{merchant_id, trade_no, txn_id, status: SUCCESS, amount}``, signed the same
  way (its own nonce); the platform answers ``{"code": "SUCCESS"}`` once recorded, and a repeated callback the same.
  A callback whose timestamp is outside ``YIBAO_SIGNATURE_WINDOW_S`` of now, or whose nonce was seen before (a replay), is
  refused (401): the provider sends a repeated notification with a new timestamp and nonce.

Demo: a demo database without a configured provider uses `DemoChannel` (every payment succeeds at once, transaction
numbers ``DEMO…``). A production database without a provider refuses mobile payment (`NotConfigured`).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
import msgspec
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core import crypto
from yibao.core.errors import YibaoError
from yibao.core.money import yuan

MAX_ANSWER_BYTES = 64 * 1024
# a callback's x-yb-nonce (recorded against replay, as the gateway's)
NONCE_MIN, NONCE_MAX = 16, 128


@dataclass(frozen=True)
class PayResult:
    """``status``: succeeded | refused | timed_out (no answer in time: the provider may still take the money)."""

    status: str
    txn_id: str = ""
    reason: str = ""


class Channel(Protocol):
    def pay(self, trade_no: str, amount_fen: int, subject: str) -> PayResult: ...

    def refund(self, trade_no: str, txn_id: str, refund_no: str, amount_fen: int) -> bool: ...

    def verify_callback(self, timestamp: str, nonce: str, signature: str, body: bytes, window_s: int) -> bool: ...


class NotConfigured(YibaoError):
    http_status = 503

    def __init__(self) -> None:
        self.reason = "payment-not-configured"
        self.cause = "no YIBAO_PAY_PROVIDER"
        super().__init__("医保移动支付尚未开通（未配置支付渠道），请到医院窗口结算")


def sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


class Answer(msgspec.Struct, forbid_unknown_fields=False):
    status: str
    txn_id: str = ""
    reason: str = ""


class HttpChannel:
    """A payment provider over HTTP(S), signed both ways."""

    def __init__(self, url: str, merchant_id: str, key: str, notify_url: str, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not key or not merchant_id:
            raise ValueError("YIBAO_PAY_KEY and YIBAO_PAY_MERCHANT are required with YIBAO_PAY_PROVIDER")
        self.url, self.merchant_id, self._key, self.notify_url, self.timeout_s = url.rstrip("/"), merchant_id, key, notify_url, timeout_s
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, transport=transport)

    def __repr__(self) -> str:  # never the key
        return f"HttpChannel({self.url!r})"

    def _post(self, path: str, payload: dict[str, str]) -> Answer:
        """The provider's signed answer; raises TimeoutError when none came in time, ValueError when it is not one."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        headers = {"content-type": "application/json; charset=utf-8", "x-yb-timestamp": timestamp, "x-yb-nonce": nonce,
                   "x-yb-signature": sign(self._key, timestamp, nonce, body)}
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._client.stream("POST", self.url + path, content=body, headers=headers) as reply:
                answer = bytearray()
                for chunk in reply.iter_bytes():
                    answer += chunk
                    if len(answer) > MAX_ANSWER_BYTES:
                        raise ValueError("provider answer too large")
                    if time.monotonic() > deadline:
                        raise TimeoutError("provider answer too slow")
                if reply.status_code != 200:
                    raise ValueError(f"provider answered HTTP {reply.status_code}")
                answered_at, signature = reply.headers.get("x-yb-timestamp", ""), reply.headers.get("x-yb-signature", "")
        except httpx.TimeoutException:
            raise TimeoutError("provider timed out") from None
        except httpx.HTTPError as error:
            raise ValueError(f"provider unreachable: {type(error).__name__}") from None
        if not signature or not crypto.equal(sign(self._key, answered_at, nonce, bytes(answer)), signature.lower()):
            raise ValueError("provider answer is not signed with our key for this request")
        try:
            return msgspec.json.decode(bytes(answer), type=Answer)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
            raise ValueError(f"provider answer is not one: {str(error)[:100]}") from None

    def pay(self, trade_no: str, amount_fen: int, subject: str) -> PayResult:
        try:
            answer = self._post("/pay", {"merchant_id": self.merchant_id, "trade_no": trade_no, "amount": str(yuan(amount_fen)),
                                         "subject": subject, "notify_url": self.notify_url})
        except TimeoutError as error:
            return PayResult("timed_out", reason=str(error))
        except ValueError as error:
            # unreachable or garbled: whether the money moved is unknown, as after a timeout; a late success is refunded
            return PayResult("timed_out", reason=str(error)[:200])
        if answer.status == "SUCCESS" and answer.txn_id:
            return PayResult("succeeded", answer.txn_id[:64])
        if answer.status == "REFUSED":
            return PayResult("refused", answer.txn_id[:64], answer.reason[:200] or "refused")
        return PayResult("timed_out", reason=f"provider status {answer.status[:20]}")

    def refund(self, trade_no: str, txn_id: str, refund_no: str, amount_fen: int) -> bool:
        try:
            answer = self._post("/refund", {"merchant_id": self.merchant_id, "trade_no": trade_no, "txn_id": txn_id,
                                            "refund_no": refund_no, "amount": str(yuan(amount_fen))})
        except (TimeoutError, ValueError):
            return False
        return answer.status == "SUCCESS"

    def verify_callback(self, timestamp: str, nonce: str, signature: str, body: bytes, window_s: int) -> bool:
        """Signed with our key, within ``window_s`` of now and with a usable nonce (the caller records it: a replay of the
        same callback inside the window is refused there)."""
        if not signature or not NONCE_MIN <= len(nonce) <= NONCE_MAX:
            return False
        try:
            if abs(time.time() * 1000 - int(timestamp)) > window_s * 1000:
                return False
        except ValueError:
            return False
        return crypto.equal(sign(self._key, timestamp, nonce, body), signature.lower())

    def close(self) -> None:
        self._client.close()


class DemoChannel:
    """A demo database's stand-in channel: every payment succeeds at once. Never used with a production database."""

    def pay(self, trade_no: str, amount_fen: int, subject: str) -> PayResult:
        return PayResult("succeeded", f"DEMO{trade_no}")

    def refund(self, trade_no: str, txn_id: str, refund_no: str, amount_fen: int) -> bool:
        return True

    def verify_callback(self, timestamp: str, nonce: str, signature: str, body: bytes, window_s: int) -> bool:
        return False  # the demo channel never calls back


_HTTP: dict[tuple[str, str, str, str, float], HttpChannel] = {}


def channel(session: Session, settings: Settings) -> Channel:
    """The channel for this database: the configured provider; else the demo's, in a demo database only; else 503."""
    from yibao.deployment import service as deployment

    if settings.pay_provider_url:
        config = (settings.pay_provider_url, settings.pay_merchant_id, settings.pay_key, settings.pay_notify_url, settings.pay_timeout_s)
        found = _HTTP.get(config)
        if found is None:
            found = _HTTP[config] = HttpChannel(*config[:4], timeout_s=config[4])
        return found
    if deployment.mode(session) == deployment.DEMO:
        return DemoChannel()
    raise NotConfigured()
