"""A partner bank's credit service, stand-in: a real HTTP server on a free port, in a thread.

It speaks what `yibao.credit.bank.HttpBank` expects: checks each request's HMAC-SM3 signature (timestamp ⏎ nonce ⏎ body),
its age and its nonce; answers ``apply`` (a limit by ID number, or refused), ``advance`` (paid to the institution,
idempotent by advance_no), ``cancel``, ``collect`` (from the person's card: declined while the card is short) and
``close``; and signs its answer over its timestamp, the request's nonce and the answer. It keeps its own books, so a
test can compare them with the platform's.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from yibao.core import crypto


def _sign(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    return crypto.hmac_sm3_hex(key.encode(), f"{timestamp}\n{nonce}\n".encode() + body)


@dataclass
class StandInBank:
    key: str
    default_limit: str = "5000.00"
    # certno → limit granted ("" refuses)
    limits: dict[str, str] = field(default_factory=dict)
    # bank_ref of cards without money: collections are declined
    short_cards: set[str] = field(default_factory=set)
    # normal | down (500) | unsigned
    behaviour: str = "normal"
    # set: advances are declined with this reason
    advance_refusal: str = ""
    agreements: dict[str, dict[str, Any]] = field(default_factory=dict)  # bank_ref → {certno, limit}
    advances: dict[str, dict[str, Any]] = field(default_factory=dict)  # advance_no → {bank_ref, amount, fixmedins_code, status}
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)  # repayment_no → {bank_ref, amount, paid}
    _nonces: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ref_of(self, certno: str) -> str:
        return next(ref for ref, a in self.agreements.items() if a["certno"] == certno)

    def paid_to(self, fixmedins_code: str) -> Decimal:
        return sum((Decimal(a["amount"]) for a in self.advances.values()
                    if a["fixmedins_code"] == fixmedins_code and a["status"] == "paid"), Decimal(0))

    def start(self) -> str:
        bank = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = bank.answer(self.path.rsplit("/", 1)[-1], body, headers)
                if bank.behaviour == "down":
                    status, answer = 500, b'{"error":"maintenance"}'
                timestamp = str(int(time.time() * 1000))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                if bank.behaviour != "unsigned":
                    self.send_header("x-yb-timestamp", timestamp)
                    self.send_header("x-yb-signature", _sign(bank.key, timestamp, headers.get("x-yb-nonce", ""), answer))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/credit/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, operation: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        timestamp, nonce, signature = headers.get("x-yb-timestamp", ""), headers.get("x-yb-nonce", ""), headers.get("x-yb-signature", "")
        try:
            fresh = abs(time.time() * 1000 - int(timestamp)) <= 300_000
        except ValueError:
            fresh = False
        with self._lock:
            if not fresh or not nonce or nonce in self._nonces or not crypto.equal(_sign(self.key, timestamp, nonce, body), signature):
                return 401, b'{"error":"bad signature"}'
            self._nonces.add(nonce)
            request = json.loads(body)
            handler = getattr(self, f"_{operation}", None)
            if handler is None:
                return 404, b'{"error":"no such operation"}'
            return 200, json.dumps(handler(request), ensure_ascii=False).encode()

    def _apply(self, r: dict[str, Any]) -> dict[str, Any]:
        limit = self.limits.get(r["certno"], self.default_limit)
        if not limit:
            return {"granted": False, "reason": "综合评分不足"}
        ref = f"LN{r['agreement_no'][-12:]}"
        self.agreements[ref] = {"certno": r["certno"], "limit": limit, "closed": False}
        return {"granted": True, "limit": limit, "bank_ref": ref}

    def _advance(self, r: dict[str, Any]) -> dict[str, Any]:
        if r["bank_ref"] not in self.agreements:
            return {"accepted": False, "reason": "无此授信"}
        if self.advance_refusal:
            return {"accepted": False, "reason": self.advance_refusal}
        found = self.advances.setdefault(r["advance_no"], {"bank_ref": r["bank_ref"], "amount": r["amount"],
                                                           "fixmedins_code": r["fixmedins_code"], "status": "paid"})
        return {"accepted": True, "ref": f"PAY{r['advance_no'][-10:]}", "amount": found["amount"]}

    def _cancel(self, r: dict[str, Any]) -> dict[str, Any]:
        found = self.advances.get(r["advance_no"])
        if found is None:
            return {"cancelled": False, "reason": "无此垫付"}
        found["status"] = "cancelled"
        return {"cancelled": True}

    def _collect(self, r: dict[str, Any]) -> dict[str, Any]:
        if r["repayment_no"] in self.collections:
            return {"paid": self.collections[r["repayment_no"]]["paid"]}
        paid = r["bank_ref"] not in self.short_cards
        self.collections[r["repayment_no"]] = {"bank_ref": r["bank_ref"], "amount": r["amount"], "paid": paid}
        return {"paid": paid, "reason": "" if paid else "余额不足"}

    def _close(self, r: dict[str, Any]) -> dict[str, Any]:
        if r["bank_ref"] in self.agreements:
            self.agreements[r["bank_ref"]]["closed"] = True
        return {"closed": True}
