"""A partner bank's credit service over HTTP(S), signed both ways like the real-person provider
(`yibao.credential.realperson`): every request carries ``x-yb-timestamp`` (Unix ms), ``x-yb-nonce`` and
``x-yb-signature`` = hex HMAC-SM3(bank key, timestamp ⏎ nonce ⏎ body); the bank answers 200 with JSON signed over its
own timestamp, *our* nonce and its body. Anything else — a timeout, a 5xx, an unsigned or forged answer, a malformed
one — is `BankUnavailable` (503): never a grant, an advance or a payment.

Operations (POST ``<url>/<operation>``, amounts as yuan strings, every number the bank sees is ours to retry with):

- ``apply`` ``{agreement_no, certno, name}`` → ``{granted, limit, bank_ref, reason}``
- ``advance`` ``{bank_ref, advance_no, amount, fixmedins_code, setl_id}`` → ``{accepted, ref, reason}``: the bank pays the
  institution and the person owes it; the same ``advance_no`` again answers the first result
- ``cancel`` ``{bank_ref, advance_no}`` → ``{cancelled, reason}``: the settlement was reversed before any repayment
- ``collect`` ``{bank_ref, repayment_no, amount}`` → ``{paid, reason}``: take an instalment from the person's card; the
  same ``repayment_no`` again answers the first result
- ``close`` ``{bank_ref}`` → ``{closed, reason}``
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import httpx

from yibao.core import crypto
from yibao.core.errors import YibaoError

MAX_ANSWER_BYTES = 64 * 1024


class BankUnavailable(YibaoError):
    """The bank gave no usable answer; nothing was granted, advanced or collected on our side."""

    http_status = 503

    def __init__(self, cause: str) -> None:
        self.reason = "bank-unavailable"
        self.cause = cause  # for the log, never shown
        super().__init__("合作银行服务暂时不可用，请稍后再试")


def sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


class HttpBank:
    """One partner bank's endpoint and key."""

    def __init__(self, url: str, key: str, *, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        if not key:
            raise ValueError("a partner bank needs its key")
        self.url, self._key, self.timeout_s = url.rstrip("/"), key, timeout_s
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, transport=transport)

    def __repr__(self) -> str:  # never the key
        return f"HttpBank({self.url!r})"

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        headers = {"content-type": "application/json; charset=utf-8", "x-yb-timestamp": timestamp, "x-yb-nonce": nonce,
                   "x-yb-signature": sign(self._key, timestamp, nonce, body)}
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._client.stream("POST", f"{self.url}/{operation}", content=body, headers=headers) as reply:
                if reply.status_code != 200:
                    raise BankUnavailable(f"{operation}: bank answered HTTP {reply.status_code}")
                received = bytearray()
                for chunk in reply.iter_bytes():
                    received += chunk
                    if len(received) > MAX_ANSWER_BYTES:
                        raise BankUnavailable(f"{operation}: bank answer too large")
                    if time.monotonic() > deadline:  # a bank dripping bytes must not hold the transaction past the timeout
                        raise BankUnavailable(f"{operation}: bank answer too slow")
                answered_at, signature = reply.headers.get("x-yb-timestamp", ""), reply.headers.get("x-yb-signature", "")
        except httpx.TimeoutException:
            raise BankUnavailable(f"{operation}: bank timed out") from None
        except httpx.HTTPError as error:
            raise BankUnavailable(f"{operation}: bank unreachable: {type(error).__name__}") from None
        answer = bytes(received)
        if not signature or not crypto.equal(sign(self._key, answered_at, nonce, answer), signature.lower()):
            raise BankUnavailable(f"{operation}: bank answer is not signed with our key for this request")
        try:
            decoded = json.loads(answer)
        except (ValueError, RecursionError):
            raise BankUnavailable(f"{operation}: bank answer is not JSON") from None
        if not isinstance(decoded, dict):
            raise BankUnavailable(f"{operation}: bank answer is not an object")
        return decoded

    def close(self) -> None:
        self._client.close()


_CLIENTS: dict[tuple[str, str], HttpBank] = {}
_LOCK = threading.Lock()


def client(url: str, key: str) -> HttpBank:
    """One client per bank endpoint and key and process, so connections are reused."""
    with _LOCK:
        found = _CLIENTS.get((url, key))
        if found is None:
            found = _CLIENTS[(url, key)] = HttpBank(url, key)
        return found


DEMO_URL = "demo:"


class DemoBank:
    """The demo's partner bank (``url`` ``demo:``), answering in-process: a limit of 5,000 yuan for everyone, every
    advance accepted, every collection paid. Only in a demo database (`yibao.credit.service.bank_client`)."""

    limit = "5000.00"

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        if operation == "apply":
            return {"granted": True, "limit": self.limit, "bank_ref": f"DEMO{payload['agreement_no'][-12:]}"}
        if operation == "advance":
            return {"accepted": True, "ref": f"DEMO{payload['advance_no'][-12:]}"}
        if operation == "cancel":
            return {"cancelled": True}
        if operation == "collect":
            return {"paid": True}
        if operation == "close":
            return {"closed": True}
        raise BankUnavailable(f"demo bank: no operation {operation}")
