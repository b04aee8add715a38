"""Paying benefits into people's bank accounts (代发): the bank's disbursement service over HTTP(S), signed both ways.

Request: ``POST {url}`` with JSON ``{"ref", "payee_name", "bank_name", "account_no", "amount_fen", "memo"}`` and the
headers ``x-yb-timestamp``, ``x-yb-nonce``, ``x-yb-signature`` = HMAC-SM3(key, timestamp "\\n" nonce "\\n" body), hex.
Answer (HTTP 200, signed the same way over the answer's body with the request's nonce):
``{"status": "paid" | "refused", "bank_ref": "...", "reason": "..."}``. ``ref`` is ours and the same at every retry of
one allowance: the bank pays a reference once and answers a repeated one with the first payment's outcome.
Anything else (timeout, unreachable, unsigned, not an answer) raises `Unavailable`: nothing is known to be paid, and the
next run asks again with the same reference.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import httpx
import msgspec

from yibao.core import crypto
from yibao.core.errors import YibaoError

MAX_ANSWER_BYTES = 16 * 1024


class Unavailable(YibaoError):
    """The bank could not be asked or did not answer usably: the payment's outcome is unknown."""

    http_status = 503
    reason = "payout_unavailable"

    def __init__(self, cause: str) -> None:
        super().__init__(f"代发渠道暂不可用：{cause}")
        self.cause = cause


class NotConfigured(YibaoError):
    http_status = 503
    reason = "payout_not_configured"

    def __init__(self) -> None:
        super().__init__("未配置待遇代发渠道（YIBAO_PAYOUT_URL 与 YIBAO_PAYOUT_KEY），生育津贴暂不能发放")


@dataclass(frozen=True)
class Outcome:
    paid: bool
    bank_ref: str
    reason: str


class _Answer(msgspec.Struct, forbid_unknown_fields=False):
    status: str
    bank_ref: str = ""
    reason: str = ""


def sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


class HttpPayout:
    def __init__(self, url: str, key: str, *, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        if not url or not key:
            raise NotConfigured()
        self.url, self._key = url, key
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, transport=transport)

    def __repr__(self) -> str:  # never the key
        return f"HttpPayout({self.url!r})"

    def pay(self, *, ref: str, payee_name: str, bank_name: str, account_no: str, amount_fen: int, memo: str) -> Outcome:
        body = json.dumps({"ref": ref, "payee_name": payee_name, "bank_name": bank_name, "account_no": account_no,
                           "amount_fen": amount_fen, "memo": memo}, ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        headers = {"content-type": "application/json; charset=utf-8", "x-yb-timestamp": timestamp, "x-yb-nonce": nonce,
                   "x-yb-signature": sign(self._key, timestamp, nonce, body)}
        try:
            reply = self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise Unavailable("bank timed out") from None
        except httpx.HTTPError as error:
            raise Unavailable(f"bank unreachable: {type(error).__name__}") from None
        if reply.status_code != 200:
            raise Unavailable(f"bank answered HTTP {reply.status_code}")
        if len(reply.content) > MAX_ANSWER_BYTES:
            raise Unavailable("bank answer too large")
        answered_at, signature = reply.headers.get("x-yb-timestamp", ""), reply.headers.get("x-yb-signature", "")
        if not signature or not crypto.equal(sign(self._key, answered_at, nonce, reply.content), signature.lower()):
            raise Unavailable("bank answer is not signed with our key for this request")
        try:
            answer = msgspec.json.decode(reply.content, type=_Answer)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
            raise Unavailable(f"bank answer is not an outcome: {str(error)[:100]}") from None
        if answer.status not in ("paid", "refused"):
            raise Unavailable(f"bank answered status {answer.status[:20]!r}")
        return Outcome(answer.status == "paid", answer.bank_ref[:64], answer.reason[:200])

    def close(self) -> None:
        self._client.close()
