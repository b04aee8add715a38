"""A bank's disbursement service stand-in (代发): a real HTTP server on a free port, in a thread.

It speaks what `yibao.maternity.payout.HttpPayout` expects: checks the request's HMAC-SM3 signature (timestamp ⏎ nonce
⏎ body), pays each reference once (a repeated reference answers the first outcome and pays nothing more), refuses an
account it was told to refuse, and signs its answer over its timestamp, the request's nonce and the answer.
``behaviour``: normal | slow (answers after the client gave up — but has paid, as a real bank may) | error (HTTP 500).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from yibao.core import crypto


def _sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


@dataclass
class Bank:
    key: str
    behaviour: str = "normal"
    slow_s: float = 2.0
    refuse_accounts: set[str] = field(default_factory=set)
    paid: dict[str, dict[str, Any]] = field(default_factory=dict)   # ref → the payment made
    requests: int = 0
    bad_signatures: int = 0

    def _answer(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests += 1
        if not crypto.equal(_sign(self.key, headers.get("x-yb-timestamp", ""), headers.get("x-yb-nonce", ""), body),
                            headers.get("x-yb-signature", "")):
            self.bad_signatures += 1
            return 401, b'{"error":"bad signature"}'
        order = json.loads(body)
        if order["ref"] in self.paid:
            return 200, json.dumps({"status": "paid", "bank_ref": self.paid[order["ref"]]["bank_ref"]}).encode()
        if order["account_no"] in self.refuse_accounts:
            return 200, json.dumps({"status": "refused", "reason": "账户已销户"}, ensure_ascii=False).encode()
        self.paid[order["ref"]] = {**order, "bank_ref": f"B{len(self.paid) + 1:08d}"}
        return 200, json.dumps({"status": "paid", "bank_ref": self.paid[order["ref"]]["bank_ref"]}).encode()

    def start(self) -> str:
        bank = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = bank._answer(body, headers)
                if bank.behaviour == "slow":
                    bank._stop.wait(bank.slow_s)
                if bank.behaviour == "error":
                    status, answer = 500, b'{"error":"internal"}'
                timestamp = str(int(time.time() * 1000))
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.send_header("x-yb-timestamp", timestamp)
                    self.send_header("x-yb-signature", _sign(bank.key, timestamp, headers.get("x-yb-nonce", ""), answer))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up (slow)
                    pass

        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/disbursements"

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
