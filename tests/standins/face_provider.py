"""A face-verification provider stand-in: a real HTTP server on a free port, in a thread.

It speaks the interface `yibao.credential.realperson.HttpProvider` expects: checks the request's
HMAC-SM3 signature (timestamp ⏎ nonce ⏎ body), its age and its nonce; answers from a table of enrolled
faces (ID number, name, face → score); faces starting with ``photo:`` are not live (a printed photo
held to the camera); and signs its answer over its timestamp, the request's nonce and the answer.
``behaviour`` makes it misbehave the ways real providers do: slow, 500, garbage, unsigned.
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
class FaceProvider:
    key: str
    # certno → (name, face, score)
    enrolled: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    # normal | slow | error | garbage | unsigned | wrong-nonce
    behaviour: str = "normal"
    slow_s: float = 3.0
    # what it was asked (never the face), to prove what the platform sent
    seen: list[dict[str, Any]] = field(default_factory=list)
    _nonces: set[str] = field(default_factory=set)

    def enrol(self, certno: str, name: str, face: str, score: float = 0.96) -> None:
        self.enrolled[certno] = (name, face, score)

    def start(self) -> str:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                status, answer, nonce = provider.answer(body, {k.lower(): v for k, v in self.headers.items()})
                if provider.behaviour == "slow":
                    provider._stop.wait(provider.slow_s)
                if provider.behaviour == "error":
                    status, answer = 500, b'{"error":"internal"}'
                if provider.behaviour == "garbage":
                    answer = b"<html>maintenance</html>"
                timestamp = str(int(time.time() * 1000))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                if provider.behaviour != "unsigned":
                    signed_nonce = "0" * 32 if provider.behaviour == "wrong-nonce" else nonce
                    self.send_header("x-yb-timestamp", timestamp)
                    self.send_header("x-yb-signature", _sign(provider.key, timestamp, signed_nonce, answer))
                self.end_headers()
                self.wfile.write(answer)

        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/face/verify"

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        timestamp, nonce, signature = headers.get("x-yb-timestamp", ""), headers.get("x-yb-nonce", ""), headers.get("x-yb-signature", "")
        try:
            fresh = abs(time.time() * 1000 - int(timestamp)) <= 300_000
        except ValueError:
            fresh = False
        if not fresh or not nonce or nonce in self._nonces or not crypto.equal(_sign(self.key, timestamp, nonce, body), signature):
            return 401, b'{"error":"bad signature"}', nonce
        self._nonces.add(nonce)
        request = json.loads(body)
        self.seen.append({"certno": request.get("certno"), "name": request.get("name"), "keys": sorted(request)})
        face = str(request.get("face", ""))
        name, enrolled_face, score = self.enrolled.get(str(request.get("certno", "")), ("", "", 0.0))
        live = bool(face) and not face.startswith("photo:")
        match = live and name == request.get("name") and crypto.equal(enrolled_face, face)
        verdict = {"match": match, "live": live, "score": score if match else 0.07,
                   "reason": "" if match else ("not live" if not live else "does not match the photo on file")}
        return 200, json.dumps(verdict).encode(), nonce
