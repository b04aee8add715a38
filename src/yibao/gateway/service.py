"""One call of the national interface, from bytes in to bytes out.

Order of work: size → signature → JSON → envelope → transaction → input; then one unit of
work that records the nonce, returns the stored answer for a known msgid, checks the
sign-in, runs the handler and stores its answer. A refusal rolls everything back (only the
nonce is kept), so bad input never leaves anything half-written.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import msgspec
import structlog
from sqlalchemy import String, bindparam, delete, func, insert, literal, null, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.config import Settings
from yibao.core import clock, crypto
from yibao.core.errors import AuthError, Conflict, InputError, Unavailable, YibaoError
from yibao.core.schema import MAX_DEPTH, check_depth, convert
from yibao.gateway import auth, dialect, front, wire
from yibao.gateway.calllog import CallLog, NoCallLog, Trace
from yibao.gateway.contract import Context, Transaction, path_index
from yibao.gateway.envelope import DECODER, ENCODER, Answer, Envelope, response
from yibao.gateway.models import GatewayMessage, GatewayNonce, SignIn
from yibao.gateway.rows import SignInRow, StoredAnswer
from yibao.gateway.signin import check_sign_in, require_sign_in
from yibao.observability import GATEWAY_AUDIT_SUPPRESSED, GATEWAY_AUTH_REFUSED, GATEWAY_LATENCY, GATEWAY_REQUESTS, ensure_logging
from yibao.store import sql
from yibao.store.db import Database

log = structlog.get_logger("yibao.gateway")

_NONCE = sql.table_of(GatewayNonce)
_MESSAGE = sql.table_of(GatewayMessage)
_SIGN_IN = sql.table_of(SignIn)


def _record_nonce_statement(dialect_name: str) -> Any:
    """One statement: insert unless present; no row back means the nonce was seen before."""
    return (sql.dialect_insert(dialect_name)(_NONCE).values(access_key=bindparam("access_key"), nonce=bindparam("nonce"),
                                                            seen_at=bindparam("seen_at"))
            .on_conflict_do_nothing().returning(_NONCE.c.nonce))


RECORD_NONCE = sql.Query(str, _record_nonce_statement)


class CallStart(msgspec.Struct, gc=False):
    """A row of CALL_START: part 'n' (the nonce was new), 's' (the sign-in: a = fixmedins_code, t1 = sign_time,
    t2 = signout_time) or 'm' (an answer stored under the msgid: a = request_sm3, b = response)."""

    part: str
    a: str | None
    b: str | None
    t1: datetime | None
    t2: datetime | None


def _call_start_statement(_dialect_name: str) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    fresh = (pg_insert(_NONCE).values(access_key=bindparam("access_key"), nonce=bindparam("nonce"), seen_at=bindparam("seen_at"))
             .on_conflict_do_nothing().returning(_NONCE.c.nonce).cte("fresh"))
    return union_all(
        select(literal("n", String()).label("part"), null().label("a"), null().label("b"), null().label("t1"), null().label("t2"))
        .select_from(fresh),
        select(literal("s", String()), _SIGN_IN.c.fixmedins_code, null(), _SIGN_IN.c.sign_time, _SIGN_IN.c.signout_time)
        .where(_SIGN_IN.c.sign_no == bindparam("sign_no")),
        select(literal("m", String()), _MESSAGE.c.request_sm3, _MESSAGE.c.response, null(), null())
        .where(_MESSAGE.c.fixmedins_code == bindparam("fixmedins_code"), _MESSAGE.c.msgid == bindparam("msgid")))


# PostgreSQL only: what a writing call reads first, in one statement (one round trip instead of three): the nonce recorded
# (RECORD_NONCE), the sign-in (signin.SIGN_IN) and the answers stored under the msgid (STORED_ANSWERS). The INSERT in the
# WITH runs once; the other parts read tables it does not touch. SQLite has no INSERT inside WITH and no round trips to
# save: it runs the three statements.
CALL_START = sql.Query(CallStart, _call_start_statement)
# every answer stored under the msgid (usually none, rarely two): the one of this request, and whether another request used it
STORED_ANSWERS = sql.Query(StoredAnswer, sql.select_of(StoredAnswer, _MESSAGE)
                           .where(_MESSAGE.c.fixmedins_code == bindparam("fixmedins_code"), _MESSAGE.c.msgid == bindparam("msgid")))
STORE_ANSWER = sql.Statement(insert(_MESSAGE).values({name: bindparam(name) for name in (
    "fixmedins_code", "msgid", "infno", "request_sm3", "response", "created_at", "msgid_reused")}))


def record_nonce(session: Session, access_key: str, nonce: str) -> bool:
    """Record a signed request's nonce in the caller's transaction; False when it was recorded before (a replay).
    The one place nonces are written: the gateway's calls and the counter's REST decode share it."""
    return bool(sql.rows(session, RECORD_NONCE, access_key=access_key, nonce=nonce, seen_at=clock.now()))

# SQLite names the table in its message ("UNIQUE constraint failed: visit.ipt_otp_no, …"); PostgreSQL in diag.table_name
_SQLITE_VIOLATION = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?:: (\w+)\.)?")
_PG_VIOLATION = {"23505": "unique", "23503": "foreign key", "23502": "not null", "23514": "check"}


class _Infno(msgspec.Struct):
    infno: str = ""


# only the envelope's infno (the rest skipped unparsed): where a call should run is decided before it is checked
_INFNO_ONLY = msgspec.json.Decoder(_Infno)

# authentication failures of a known key reach the audit trail at most once per key per this many seconds
AUTH_FAILURE_INTERVAL_S = 1.0


@dataclass
class Reply:
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] | None = None


class GatewayService:
    def __init__(self, db: Database, settings: Settings, table: dict[str, Transaction], call_log: CallLog | None = None,
                 home_of: Callable[[str], Any] | None = None) -> None:
        """`table` (infno → transaction), `call_log` and `home_of` (Context.home_of) are composed by `yibao.app`: the
        gateway knows no domain."""
        self.db = db
        self.home_of = home_of
        self.settings = settings
        ensure_logging(settings.log_json)
        self.table = table
        self.paths = path_index(self.table)
        self.clients = auth.ClientDirectory(auth.load_from(lambda: db.unit_of_work(write=False)), settings.key_cache_s)
        self.fronts = front.FrontDirectory(front.load_from(lambda: db.unit_of_work(write=False)), settings.key_cache_s)
        # regional dialects (gateway/dialects/*.yaml), checked here: a bad file stops the start naming its file and key
        self.dialects = dialect.bundled()
        self._calls = 0
        self.call_log: CallLog = call_log or NoCallLog()  # every verified call (the vendors' console keeps them)
        # access key → when its last authentication failure was written (bounded: only known keys get here)
        self._failures_written: OrderedDict[str, float] = OrderedDict()
        self._failures_lock = threading.Lock()

    def infno_for_path(self, path: str) -> str | None:
        return self.paths.get(path.rstrip("/"))

    def reads_only(self, path_infno: str | None, body: bytes) -> bool:
        """Whether the call names a read-only transaction, so the app may run it off the event loop. A hint read off the
        bytes before anything is checked: a wrong one changes only where the call runs, never what it may do."""
        infno = path_infno
        if infno is None:
            try:
                # .NET's Encoding.UTF8 starts a body with a byte-order mark, which the reader strips too (wire.py)
                infno = _INFNO_ONLY.decode(body.removeprefix(b"\xef\xbb\xbf")).infno
            except (msgspec.DecodeError, RecursionError):  # not JSON or UTF-8, nested too deep, infno not a string: decided when checked
                return False
        tx = self.table.get(infno)
        return tx is not None and tx.reads_only

    def unknown_path(self, path: str, dialect_name: str | None = None) -> Reply:
        GATEWAY_REQUESTS.labels(infno="----", infcode="-1").inc()
        reply = self._refusal(InputError(f"no transaction is served at {path[:100]}"), clock.now())
        translation = self.dialects.translation(None, dialect_name)
        return Reply(translation.outbound_bytes(reply.body)) if translation else reply

    def http_refusal(self, message: str) -> Reply:
        """A refusal the web framework made before the gateway saw the call (a method not served…), as an envelope."""
        GATEWAY_REQUESTS.labels(infno="----", infcode="-1").inc()
        return self._refusal(InputError(message), clock.now())

    def call(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] | None = None,
             path_infno: str | None = None, oversized: bool = False, client_ip: str = "", dialect_name: str | None = None) -> Reply:
        """``dialect_name``: the dialect the request's path selects (None: a national path)."""
        received = clock.now()
        started = time.perf_counter()
        trace = Trace(body, started, client_ip, received)
        label = path_infno or "----"  # the metric's infno: only served transactions, so strangers cannot add series
        infno = path_infno or ""  # the audit trail's: what the caller asked for
        caller: auth.Caller | None = None
        by_path = self.dialects[dialect_name] if dialect_name else None
        # None on the national hot path; until the key is known, the path's dialect
        translation = self.dialects.translation(None, dialect_name, path_infno) if by_path else None
        try:
            if oversized:
                raise InputError(f"request body is larger than {self.settings.max_body_bytes} bytes")
            caller = auth.authenticate(self.clients, headers, body, query or {}, self.settings.signature_window_s, **_path_rules(by_path),
                                       fronts=self.fronts, client_ip=client_ip)
            if caller.dialect or by_path:
                translation = self.dialects.translation(caller.dialect, dialect_name, path_infno)
                trace.dialect = translation.dialect.name if translation is not None else ""
            envelope = self._envelope(wire.utf8_body(body, headers.get("content-type", "")), caller, path_infno,
                                      wire.infno_of_api_name(headers.get("_api_name", "")), translation=translation)
            infno = envelope.infno
            tx, data = self._input(envelope)
            label = tx.infno
            reply = self._run_or_replay(envelope, tx, data, caller, received, trace)
            outcome = "0"
        except auth.Refused as error:
            outcome = "-1"
            GATEWAY_AUTH_REFUSED.labels(reason=error.reason).inc()
            if error.fixmedins_code:
                self._auth_failed(error, infno, client_ip)
            reply = self._refusal(error, received)
            wrapped = by_path.gateway_error(error.reason, error.message) if by_path else None
            if wrapped is not None:  # the dialect's gateway reports authentication failures in its own wrapper
                reply, translation = Reply(ENCODER.encode(wrapped)), None
            log.info("refused", infno=label, error=error.message, reason=error.reason)
        except YibaoError as error:
            outcome = "-1"
            reply = self._refusal(error, received)
            if caller is not None:
                self._refused(caller, infno, error, client_ip, trace, reply)
            log.info("refused", infno=label, error=error.message)
        except Exception:
            outcome = "error"
            log.exception("gateway call failed", infno=label)
            reply = Reply(ENCODER.encode(response(admdvs=self.settings.platform_admdvs, received=received, infcode=-1,
                                                  err_msg="internal error in the platform; retry with the same msgid")))
            if caller is not None:
                self.call_log.refused_apart(self.db, trace, caller, infno, "internal error in the platform", reply)
        if translation is not None and reply.content_type.startswith("application/json"):
            reply = Reply(translation.outbound_bytes(reply.body), reply.content_type, reply.headers)
        GATEWAY_REQUESTS.labels(infno=label, infcode=outcome).inc()
        GATEWAY_LATENCY.labels(infno=label).observe(time.perf_counter() - started)
        return reply

    # -- steps -------------------------------------------------------------------------

    def _envelope(self, body: bytes, caller: auth.Caller, path_infno: str | None, api_infno: str | None = None,
                  translation: dialect.Translation | None = None) -> Envelope:
        document = _decode(body, "request body")
        if not isinstance(document, dict):
            raise InputError("request body must be a JSON object (the envelope)")
        # depth needs at least that many brackets: most calls skip the walk
        if body.count(b"{") + body.count(b"[") > MAX_DEPTH:
            check_depth(document)
        if translation is not None:  # a regional dialect: its nodes, names and dates in the national form
            document = translation.inbound(document)
        envelope = convert(document, Envelope, prefix="")
        if path_infno and envelope.infno != path_infno:
            raise InputError(f"'{envelope.infno}' does not match the path's transaction {path_infno}", field="infno")
        if api_infno and envelope.infno != api_infno:
            raise InputError(f"'{envelope.infno}' does not match the _api_name header's transaction {api_infno}", field="infno")
        if envelope.fixmedins_code != caller.fixmedins_code:
            raise AuthError(f"{envelope.fixmedins_code} is not the institution of access key {caller.access_key}", field="fixmedins_code")
        clock.parse_datetime(envelope.inf_time, "inf_time")
        return envelope

    def _input(self, envelope: Envelope) -> tuple[Transaction, Any]:
        tx = self.table.get(envelope.infno)
        if tx is None:
            raise InputError(f"unknown transaction '{envelope.infno}'", field="infno")
        raw_input = envelope.input
        if isinstance(raw_input, str):
            raw_input = _decode(raw_input.encode(), "input", not_json="is a string but not JSON") if raw_input.strip() else {}
            check_depth(raw_input, "input")
        if raw_input is None:
            raise InputError("required field is missing", field="input")
        if isinstance(raw_input, list) and len(raw_input) == 1 and isinstance(raw_input[0], dict):
            raw_input = raw_input[0]  # a tolerant reader takes a list of one for the object
        if not isinstance(raw_input, dict):
            raise InputError("must be a JSON object", field="input")
        return tx, convert(raw_input, tx.input_type, prefix="input")

    def _run(self, envelope: Envelope, tx: Transaction, data: Any, caller: auth.Caller, received: Any, trace: Trace) -> Reply:
        fingerprint = _fingerprint(envelope)
        try:
            with self._unit_of_work(tx) as (session, book):
                started = None if self.db.is_sqlite or tx.reads_only else self._call_start(session, envelope, caller, tx)
                if started is None:
                    book(lambda s: self._record_nonce(s, caller))
                if caller.front:  # opt-in (a key that trusts a front server): one audit row a call, in the call's transaction
                    book(lambda s: audit.record(s, "gateway.via_front", actor=caller.front, subject=caller.access_key,
                                                fixmedins_code=caller.fixmedins_code, infno=envelope.infno, ip=caller.peer))
                # the sign-in first: a stored answer (1101's holds personal data) goes only to a signed-in operator
                sign_no = None
                if tx.needs_sign_in:
                    sign_no = (require_sign_in(session, envelope.sign_no, envelope.fixmedins_code, self.settings.sign_in_ttl_s)
                               if started is None else
                               check_sign_in(started[0], envelope.sign_no, envelope.fixmedins_code, self.settings.sign_in_ttl_s))
                stored = (sql.rows(session, STORED_ANSWERS, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid)
                          if started is None else started[1])
                replay = _answer_to(stored, fingerprint)
                if replay is not None:
                    book(lambda s: self.call_log.answered(s, trace, caller, tx.infno, envelope.msgid, replay))
                    return replay
                if stored:
                    # another request had this msgid (a restarting counter): served as the new request it is, and flagged
                    log.info("msgid reused", fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid, infno=tx.infno)
                ctx = Context(session, envelope, caller.fixmedins_code, self.settings, received, sign_no, home_of=self.home_of)
                answer = tx.handler(ctx, data)
                for write in ctx.writes:
                    book(write)
                if isinstance(answer, Answer) and answer.file_content is not None:
                    file = Reply(answer.file_content, "application/octet-stream",
                                 {"content-disposition": content_disposition(answer.file_name or "file")})
                    book(lambda s: self.call_log.answered(s, trace, caller, tx.infno, envelope.msgid, file))
                    return file
                output, warning = (answer.output, answer.warn_msg) if isinstance(answer, Answer) else (answer, "")
                output = wire.write(tx.infno, output)
                encoded = ENCODER.encode(response(admdvs=self.settings.platform_admdvs, received=received, infcode=0, output=output,
                                                  warn_msg=warning))
                if tx.store_answer:
                    session.flush()  # what the handler left to the ORM goes first, so a failure surfaces here
                    # held back (sql.defer): on PostgreSQL it goes with the console's row before the COMMIT; a twin's answer
                    # stored first surfaces there, as an IntegrityError on gateway_message
                    book(lambda s: sql.defer(s, STORE_ANSWER, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid,
                                             infno=tx.infno, request_sm3=fingerprint, response=encoded.decode(), created_at=received,
                                             msgid_reused=bool(stored)))
                book(lambda s: self.call_log.answered(s, trace, caller, tx.infno, envelope.msgid, Reply(encoded)))
                return Reply(encoded)
        except IntegrityError as error:
            table, kind = violation(error)
            if table == "gateway_message":
                # A concurrent call with the same msgid and request committed first: its answer is ours.
                with self.db.unit_of_work(write=False) as session:
                    replay = _answer_to(sql.rows(session, STORED_ANSWERS, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid),
                                        fingerprint)
                if replay is not None:
                    return replay
                raise Conflict(f"{envelope.msgid} is being answered by another call; retry with the same msgid", field="msgid") from None
            if table == "gateway_nonce":
                raise _replayed(caller) from None
            # Not a replay: a rule the handler did not check first. The caller hears which record it collides with.
            log.warning("integrity violation", infno=tx.infno, table=table, kind=kind, exc_info=True)
            raise Conflict(f"the request conflicts with a stored {table or 'record'} ({kind} constraint); nothing was written") from None
        finally:
            self._housekeeping()

    @contextmanager
    def _unit_of_work(self, tx: Transaction) -> Iterator[tuple[Session, Callable[[Callable[[Session], Any]], None]]]:
        """The call's session and ``book``, which writes what the call itself keeps (nonce, answer, message log…).

        A transaction that only reads (``reads_only``) reads on a read-only connection without the writers' lock, in one
        snapshot; what it writes is booked and written after the read, in one short write transaction that does not
        wait for the disk: a power cut may lose the record of a query (a retry then runs it again), and waiting for the
        disk was most of a 5205's time (docs/performance.md). The others write in their own transaction, as they go."""
        if not tx.reads_only:
            with self.db.unit_of_work() as session:
                yield session, lambda write: write(session)
            return
        booked: list[Callable[[Session], Any]] = []
        with self.db.unit_of_work(read_only=True) as session:
            yield session, booked.append
        with self.db.unit_of_work(durable=False) as session:
            for write in booked:
                write(session)

    def _run_or_replay(self, envelope: Envelope, tx: Transaction, data: Any, caller: auth.Caller, received: Any, trace: Trace) -> Reply:
        """`_run`; but a refusal caused by a concurrent twin (same msgid, same request) that answered first gets the twin's
        answer. On PostgreSQL both twins run their handler; the one that waited on the other's locks finds the work done
        ("batch B1 is settled") before it reaches the message table, where twins otherwise meet."""
        try:
            return self._run(envelope, tx, data, caller, received, trace)
        except (auth.Refused, AuthError):
            raise  # not a twin's doing: a missing sign-in or credential gets no stored answer
        except YibaoError:
            with self.db.unit_of_work(write=False) as session:
                replay = _answer_to(sql.rows(session, STORED_ANSWERS, fixmedins_code=envelope.fixmedins_code, msgid=envelope.msgid),
                                    _fingerprint(envelope))
            if replay is None:
                raise
            return replay

    def _call_start(self, session: Session, envelope: Envelope, caller: auth.Caller, tx: Transaction
                    ) -> tuple[SignInRow | None, list[StoredAnswer]]:
        """PostgreSQL: the nonce recorded (a replay refused), the sign-in and the stored answers, in one statement."""
        found = sql.rows(session, CALL_START, access_key=caller.access_key, nonce=caller.nonce, seen_at=clock.now(),
                         sign_no=envelope.sign_no if tx.needs_sign_in else "", fixmedins_code=envelope.fixmedins_code,
                         msgid=envelope.msgid)
        if not any(row.part == "n" for row in found):
            raise _replayed(caller)
        sign_in = next((SignInRow(row.a or "", row.t1, row.t2) for row in found if row.part == "s" and row.t1 is not None), None)
        return sign_in, [StoredAnswer(row.a or "", row.b or "") for row in found if row.part == "m"]

    def _record_nonce(self, session: Any, caller: auth.Caller) -> None:
        if not record_nonce(session, caller.access_key, caller.nonce):
            raise _replayed(caller)

    def _refused(self, caller: auth.Caller, infno: str, error: YibaoError, client_ip: str = "", trace: Trace | None = None,
                 reply: Reply | None = None) -> None:
        """A verified caller's refusal: keep its nonce (the same signed bytes cannot be sent again) and write it to the
        audit trail and the console's log, in one transaction of its own (the call's was rolled back). Never raises: the
        refusal still goes out."""
        try:
            with self.db.unit_of_work() as session:
                record_nonce(session, caller.access_key, caller.nonce)
                audit.record(session, "gateway.refused", actor=caller.access_key, fixmedins_code=caller.fixmedins_code, infno=infno,
                             outcome="refused", reason=error.message, ip=client_ip)
                if trace is not None and reply is not None:
                    self.call_log.refused(session, trace, caller, infno, error.message, reply)
                if caller.front:
                    audit.record(session, "gateway.via_front", actor=caller.front, subject=caller.access_key,
                                 fixmedins_code=caller.fixmedins_code, infno=infno, outcome="refused", reason=error.message, ip=client_ip)
        except Unavailable:  # the database is failing over: the refusal is answered all the same
            log.warning("refusal not recorded: storage unavailable", infno=infno)
        except Exception:  # noqa: BLE001 - e.g. the database is busy or full: logged, and the refusal is answered
            log.exception("refusal not recorded", infno=infno)

    def _auth_failed(self, error: auth.Refused, infno: str, client_ip: str = "") -> None:
        """A known key failed authentication (bad signature, scheme, replay): into its owner's trail, at most once a second
        per key, so a flood of forged or replayed requests cannot fill the table."""
        now = time.monotonic()
        with self._failures_lock:
            last = self._failures_written.get(error.access_key)
            if last is not None and now - last < AUTH_FAILURE_INTERVAL_S:
                GATEWAY_AUDIT_SUPPRESSED.inc()
                return
            self._failures_written[error.access_key] = now
            self._failures_written.move_to_end(error.access_key)
            while len(self._failures_written) > 10_000:
                self._failures_written.popitem(last=False)
        audit.record_apart(self.db, "gateway.auth_failed", actor=error.access_key, fixmedins_code=error.fixmedins_code, infno=infno,
                           outcome="refused", reason=error.message, ip=client_ip)

    def _housekeeping(self) -> None:
        """Every few thousand calls, forget nonces older than twice the window and console messages past retention."""
        self._calls += 1
        if self._calls % 5000:
            return
        from datetime import timedelta

        cutoff = clock.now() - timedelta(seconds=2 * self.settings.signature_window_s)
        with self.db.unit_of_work() as session:
            session.execute(delete(GatewayNonce).where(GatewayNonce.seen_at < cutoff))
            self.call_log.prune(session)

    def _refusal(self, error: YibaoError, received: Any) -> Reply:
        return Reply(ENCODER.encode(response(admdvs=self.settings.platform_admdvs, received=received, infcode=error.infcode,
                                             err_msg=error.message)))


def _path_rules(by_path: dialect.Dialect | None) -> dict[str, Any]:
    """What the path's dialect allows of the signature headers (auth.authenticate's keywords)."""
    if by_path is None:
        return {}
    return {"schemes": by_path.schemes, "tif_nonce_min": by_path.tif_nonce_min}


def _fingerprint(envelope: Envelope) -> str:
    """SM3 of the canonical (infno, input): what tells a retry (same request) from another request under one msgid."""
    return crypto.sm3_hex(msgspec.json.encode([envelope.infno, _canonical(envelope.input)], order="sorted"))


def _answer_to(stored: list[StoredAnswer], fingerprint: str) -> Reply | None:
    """The stored first answer to this very request (same msgid, same infno and input), if any."""
    for row in stored:
        if row.request_sm3 == fingerprint:
            return Reply(row.response.encode())
    return None


def _replayed(caller: auth.Caller) -> auth.Refused:
    return auth.Refused("nonce was already used: replayed request", "replayed", caller.access_key, caller.fixmedins_code)


def _decode(raw: bytes, what: str, not_json: str = "") -> Any:
    """JSON with amounts as Decimal; every way the bytes can be bad is a refusal naming ``what``."""
    try:
        return DECODER.decode(raw)
    except msgspec.DecodeError as error:
        if not_json:
            raise InputError(not_json, field=what) from None
        raise InputError(f"{what} is not valid JSON ({error})") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{what} is not valid UTF-8 (byte {error.start}); the interface speaks UTF-8 JSON") from None
    except RecursionError:
        raise InputError(f"JSON is nested deeper than {MAX_DEPTH} levels", field=what) from None


def violation(error: IntegrityError) -> tuple[str, str]:
    """(table, kind of constraint) an IntegrityError broke, on either engine; ("", …) when the driver does not say."""
    original = error.orig
    diag = getattr(original, "diag", None)
    if diag is not None and getattr(diag, "table_name", None):
        return diag.table_name, _PG_VIOLATION.get(getattr(original, "sqlstate", "") or "", "integrity")
    found = _SQLITE_VIOLATION.search(str(original))
    if found:
        return found.group(2) or "", found.group(1).lower()
    return "", "integrity"


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact name in RFC 5987 ``filename*`` (Chinese names)."""
    clean = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in clean) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"


def _canonical(value: Any) -> Any:
    """``input`` as clients send it (object or JSON string), decoded for fingerprinting."""
    if isinstance(value, str):
        try:
            return DECODER.decode(value.encode())
        except msgspec.DecodeError:
            return value
    return value


def stored_answer(db: Database, fixmedins_code: str, msgid: str) -> dict[str, Any] | None:
    """The first answer stored under a msgid (of the first request that used it)."""
    with db.unit_of_work(write=False) as session:
        text = session.scalar(select(GatewayMessage.response).where(GatewayMessage.fixmedins_code == fixmedins_code,
                                                                   GatewayMessage.msgid == msgid)
                              .order_by(GatewayMessage.created_at).limit(1))
    return msgspec.json.decode(text) if text else None


def msgid_reused(session: Session, fixmedins_code: str, msgid: str) -> bool:
    """True when two different requests of the institution were answered under this msgid (a client's restarting counter).

    Read from the rows themselves, so two such requests committed at the same moment (neither saw the other, both rows
    say ``msgid_reused`` false) still count. One indexed read: the primary key starts with (fixmedins_code, msgid)."""
    count = session.scalar(select(func.count()).select_from(GatewayMessage)
                           .where(GatewayMessage.fixmedins_code == fixmedins_code, GatewayMessage.msgid == msgid))
    return (count or 0) > 1
