"""One call of the national interface, from bytes in to bytes out.

Order of work: size → signature → JSON → envelope → transaction → input; then one unit of
work that records the nonce, returns the stored answer for a known msgid, checks the
sign-in, runs the handler and stores its answer. A refusal rolls everything back (only the
nonce is kept), so bad input never leaves anything half-written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from yibao.config import Settings
from yibao.core import clock, crypto
from yibao.core.errors import AuthError, Conflict, InputError, YibaoError
from yibao.core.schema import convert
from yibao.gateway import auth
from yibao.gateway.envelope import DECODER, ENCODER, Answer, Envelope, response
from yibao.gateway.models import GatewayMessage, GatewayNonce
from yibao.gateway.signin import require_sign_in
from yibao.gateway.table import Context, Transaction, build_table, path_index
from yibao.observability import GATEWAY_LATENCY, GATEWAY_REQUESTS
from yibao.store import sql
from yibao.store.db import Database

log = structlog.get_logger("yibao.gateway")

_NONCE = GatewayNonce.__table__
_MESSAGE = GatewayMessage.__table__
# one statement: insert unless present; no row back means the nonce was seen before
RECORD_NONCE = sql.Statement("INSERT INTO gateway_nonce (access_key, nonce, seen_at) VALUES (:access_key, :nonce, :seen_at) "
                             "ON CONFLICT DO NOTHING RETURNING nonce", _NONCE)
STORED_ANSWER = sql.Statement("SELECT request_sm3, response FROM gateway_message WHERE fixmedins_code = :fixmedins_code AND msgid = :msgid",
                              _MESSAGE)
STORE_ANSWER = sql.Statement("INSERT INTO gateway_message (fixmedins_code, msgid, infno, request_sm3, response, created_at) "
                             "VALUES (:fixmedins_code, :msgid, :infno, :request_sm3, :response, :created_at)", _MESSAGE)


@dataclass
class Reply:
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] | None = None


class GatewayService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.table = build_table()
        self.paths = path_index(self.table)
        self.clients = auth.ClientDirectory(auth.load_from(lambda: db.unit_of_work(write=False)), settings.key_cache_s)
        self._calls = 0

    def infno_for_path(self, path: str) -> str | None:
        return self.paths.get(path.rstrip("/"))

    def unknown_path(self, path: str) -> Reply:
        GATEWAY_REQUESTS.labels(infno="----", infcode="-1").inc()
        return self._refusal(InputError(f"no transaction is served at {path}"), clock.now())

    def call(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] | None = None,
             path_infno: str | None = None, oversized: bool = False) -> Reply:
        received = clock.now()
        started = time.perf_counter()
        infno = path_infno or "----"
        try:
            if oversized:
                raise InputError(f"request body is larger than {self.settings.max_body_bytes} bytes")
            envelope, tx, data, caller = self._admit(body, headers, query or {}, path_infno)
            infno = tx.infno
            reply = self._run(envelope, tx, data, caller, body, received)
            outcome = "0"
        except YibaoError as error:
            outcome = "-1"
            reply = self._refusal(error, received)
            log.info("refused", infno=infno, error=error.message)
        except Exception:
            outcome = "error"
            log.exception("gateway call failed", infno=infno)
            reply = Reply(ENCODER.encode(response(admdvs=self.settings.platform_admdvs, received=received, infcode=-1,
                                                  err_msg="internal error in the platform; retry with the same msgid")))
        GATEWAY_REQUESTS.labels(infno=infno, infcode=outcome).inc()
        GATEWAY_LATENCY.labels(infno=infno).observe(time.perf_counter() - started)
        return reply

    # -- steps -------------------------------------------------------------------------

    def _admit(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str], path_infno: str | None
               ) -> tuple[Envelope, Transaction, Any, auth.Caller]:
        caller = auth.authenticate(self.clients, headers, body, query, self.settings.signature_window_s)
        try:
            document = DECODER.decode(body)
        except msgspec.DecodeError as error:
            self._burn_nonce(caller)
            raise InputError(f"request body is not valid JSON ({error})") from None
        if not isinstance(document, dict):
            self._burn_nonce(caller)
            raise InputError("request body must be a JSON object (the envelope)")
        try:
            envelope = convert(document, Envelope, prefix="")
            if path_infno and envelope.infno != path_infno:
                raise InputError(f"'{envelope.infno}' does not match the path's transaction {path_infno}", field="infno")
            if envelope.fixmedins_code != caller.fixmedins_code:
                raise AuthError(f"{envelope.fixmedins_code} is not the institution of access key {caller.access_key}", field="fixmedins_code")
            clock.parse_datetime(envelope.inf_time, "inf_time")
            tx = self.table.get(envelope.infno)
            if tx is None:
                raise InputError(f"unknown transaction '{envelope.infno}'", field="infno")
            raw_input = envelope.input
            if isinstance(raw_input, str):
                try:
                    raw_input = DECODER.decode(raw_input.encode()) if raw_input.strip() else {}
                except msgspec.DecodeError:
                    raise InputError("is a string but not JSON", field="input") from None
            if raw_input is None:
                raise InputError("required field is missing", field="input")
            if not isinstance(raw_input, dict):
                raise InputError("must be a JSON object", field="input")
            data = convert(raw_input, tx.input_type, prefix="input")
        except YibaoError:
            self._burn_nonce(caller)
            raise
        return envelope, tx, data, caller

    def _run(self, envelope: Envelope, tx: Transaction, data: Any, caller: auth.Caller, body: bytes, received: Any) -> Reply:
        fingerprint = crypto.sm3_hex(msgspec.json.encode([envelope.infno, _canonical(envelope.input)], order="sorted"))
        try:
            with self.db.unit_of_work() as session:
                self._record_nonce(session, caller)
                stored = sql.first(session, STORED_ANSWER, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid)
                if stored is not None:
                    return self._replay(stored, fingerprint, envelope.msgid)
                sign_no = None
                if tx.needs_sign_in:
                    sign_no = require_sign_in(session, envelope.sign_no, envelope.fixmedins_code, self.settings.sign_in_ttl_s)
                ctx = Context(session, envelope, caller.fixmedins_code, self.settings, received, sign_no)
                answer = tx.handler(ctx, data)
                if isinstance(answer, Answer) and answer.file_content is not None:
                    return Reply(answer.file_content, "application/octet-stream",
                                 {"content-disposition": f'attachment; filename="{answer.file_name}"'})
                output = answer.output if isinstance(answer, Answer) else answer
                encoded = ENCODER.encode(response(admdvs=self.settings.platform_admdvs, received=received, infcode=0, output=output))
                if tx.store_answer:
                    session.flush()  # what the handler left to the ORM goes first, so a failure surfaces here
                    sql.execute(session, STORE_ANSWER, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid, infno=tx.infno,
                                request_sm3=fingerprint, response=encoded.decode(), created_at=received)
                return Reply(encoded)
        except IntegrityError:
            # A concurrent call with the same msgid (or nonce) committed first.
            with self.db.unit_of_work(write=False) as session:
                stored = sql.first(session, STORED_ANSWER, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid)
                if stored is not None:
                    return self._replay(stored, fingerprint, envelope.msgid)
            raise AuthError("nonce was already used: replayed request") from None
        except YibaoError:
            self._burn_nonce(caller)
            raise
        finally:
            self._housekeeping()

    def _replay(self, stored: sql.Record, fingerprint: str, msgid: str) -> Reply:
        if stored.request_sm3 != fingerprint:
            raise Conflict(f"{msgid} was already used for a different request; use a new msgid", field="msgid")
        return Reply(stored.response.encode())

    def _record_nonce(self, session: Any, caller: auth.Caller) -> None:
        if not sql.values(session, RECORD_NONCE, access_key=caller.access_key, nonce=caller.nonce, seen_at=clock.now()):
            raise AuthError("nonce was already used: replayed request")

    def _burn_nonce(self, caller: auth.Caller) -> None:
        """Keep the nonce of a refused request, so the same signed bytes cannot be sent again."""
        try:
            with self.db.unit_of_work() as session:
                sql.values(session, RECORD_NONCE, access_key=caller.access_key, nonce=caller.nonce, seen_at=clock.now())
        except (IntegrityError, YibaoError):
            pass

    def _housekeeping(self) -> None:
        """Every few thousand calls, forget nonces older than twice the window."""
        self._calls += 1
        if self._calls % 5000:
            return
        from datetime import timedelta

        cutoff = clock.now() - timedelta(seconds=2 * self.settings.signature_window_s)
        with self.db.unit_of_work() as session:
            session.execute(delete(GatewayNonce).where(GatewayNonce.seen_at < cutoff))

    def _refusal(self, error: YibaoError, received: Any) -> Reply:
        return Reply(ENCODER.encode(response(admdvs=self.settings.platform_admdvs, received=received, infcode=error.infcode,
                                             err_msg=error.message)))


def _canonical(value: Any) -> Any:
    """``input`` as clients send it (object or JSON string), decoded for fingerprinting."""
    if isinstance(value, str):
        try:
            return DECODER.decode(value.encode())
        except msgspec.DecodeError:
            return value
    return value


def stored_answer(db: Database, fixmedins_code: str, msgid: str) -> dict[str, Any] | None:
    with db.unit_of_work(write=False) as session:
        text = session.scalar(select(GatewayMessage.response).where(GatewayMessage.fixmedins_code == fixmedins_code,
                                                                   GatewayMessage.msgid == msgid))
    return msgspec.json.decode(text) if text else None
