"""A payment provider stand-in: a real HTTP server on a free port, in a thread.

It speaks the protocol `yibao.payment.channel.HttpChannel` expects: checks each request's HMAC-SM3 signature
(timestamp ⏎ nonce ⏎ body), its age, its nonce and the merchant; signs its answers over its timestamp, the request's
nonce and the answer. The test chooses how it behaves for the next payments:

- ``success``: takes the money and answers SUCCESS;
- ``refuse``: takes nothing and answers REFUSED (insufficient funds);
- ``timeout``: takes the money but answers only after ``slow_s`` (longer than the platform waits): the platform gives
  up; the test then delivers the provider's late success callback with `callback` / `deliver`.

``refunds`` says how it answers refunds: ``success`` (gives the money back) or ``fail`` (answers FAILED, gives nothing).

It keeps a ledger of what it took and gave back (``taken``, ``refunded``), so a test can prove nobody paid twice.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from yibao.core import crypto


def _sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


@dataclass
class PaymentProvider:
    key: str
    merchant_id: str = "M370100000001"
    behaviour: str = "success"  # success | refuse | timeout
    slow_s: float = 3.0
    refunds: str = "success"  # success | fail
    # trade_no → {"txn_id", "amount"}: the money taken from the person's bank card
    taken: dict[str, dict[str, str]] = field(default_factory=dict)
    # trade_no → refund_no: given back
    refunded: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _nonces: set[str] = field(default_factory=set)

    def start(self) -> str:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status, answer, nonce = provider.answer(self.path, body, {k.lower(): v for k, v in self.headers.items()})
                timestamp = str(int(time.time() * 1000))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.send_header("x-yb-timestamp", timestamp)
                self.send_header("x-yb-signature", _sign(provider.key, timestamp, nonce, answer))
                self.end_headers()
                try:
                    self.wfile.write(answer)
                except OSError:  # the platform gave up waiting
                    pass

        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        timestamp, nonce, signature = headers.get("x-yb-timestamp", ""), headers.get("x-yb-nonce", ""), headers.get("x-yb-signature", "")
        try:
            fresh = abs(time.time() * 1000 - int(timestamp)) <= 300_000
        except ValueError:
            fresh = False
        if not fresh or not nonce or nonce in self._nonces or not crypto.equal(_sign(self.key, timestamp, nonce, body), signature):
            return 401, b'{"status":"FAILED","reason":"bad signature"}', nonce
        self._nonces.add(nonce)
        request = json.loads(body)
        self.requests.append({"path": path, **request})
        if request.get("merchant_id") != self.merchant_id:
            return 200, b'{"status":"FAILED","reason":"unknown merchant"}', nonce
        if path.endswith("/refund"):
            if self.refunds == "fail":
                return 200, b'{"status":"FAILED","reason":"refund service unavailable"}', nonce
            trade = self.taken.get(request["trade_no"])
            if trade is None or trade["txn_id"] != request.get("txn_id") or trade["amount"] != request.get("amount"):
                return 200, b'{"status":"FAILED","reason":"no such payment"}', nonce
            self.refunded.setdefault(request["trade_no"], request["refund_no"])
            return 200, json.dumps({"status": "SUCCESS", "txn_id": request["txn_id"]}).encode(), nonce
        trade_no = request["trade_no"]
        if self.behaviour == "refuse":
            return 200, json.dumps({"status": "REFUSED", "txn_id": "", "reason": "余额不足"}).encode(), nonce
        if trade_no in self.taken:  # the same trade again: the provider never takes twice
            return 200, json.dumps({"status": "SUCCESS", "txn_id": self.taken[trade_no]["txn_id"]}).encode(), nonce
        txn_id = f"T{secrets.token_hex(12)}"
        self.taken[trade_no] = {"txn_id": txn_id, "amount": request["amount"]}
        if self.behaviour == "timeout":
            self._stop.wait(self.slow_s)
        return 200, json.dumps({"status": "SUCCESS", "txn_id": txn_id}).encode(), nonce

    def callback(self, trade_no: str, *, key: str | None = None, timestamp_ms: int | None = None) -> tuple[dict[str, str], bytes]:
        """The signed success notification the provider sends for a trade it took (now, or at ``timestamp_ms``); each with
        a new nonce."""
        trade = self.taken[trade_no]
        body = json.dumps({"merchant_id": self.merchant_id, "trade_no": trade_no, "txn_id": trade["txn_id"], "status": "SUCCESS",
                           "amount": trade["amount"]}).encode()
        timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        nonce = secrets.token_hex(16)
        return ({"content-type": "application/json", "x-yb-timestamp": timestamp, "x-yb-nonce": nonce,
                 "x-yb-signature": _sign(key or self.key, timestamp, nonce, body)}, body)

    def deliver(self, notify_url: str, trade_no: str) -> httpx.Response:
        headers, body = self.callback(trade_no)
        return httpx.post(notify_url, content=body, headers=headers, timeout=10)

    def net_taken(self) -> Decimal:
        """What the person is out of pocket at the provider: taken minus given back."""
        return sum((Decimal(t["amount"]) for n, t in self.taken.items() if n not in self.refunded), Decimal(0))
