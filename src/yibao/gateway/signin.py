"""9001 sign in / 9002 sign out: operator sessions that every other transaction needs."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import msgspec
from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import AuthError, InputError, NotFound
from yibao.core.schema import Required
from yibao.gateway.contract import Context, TransactionSet
from yibao.gateway.models import SignIn
from yibao.gateway.rows import SignInRow
from yibao.store import sql

# Whether (fixmedins_code, opter_no) names an active operator: the registry's to say, passed in by yibao.app.
OperatorCheck = Callable[[Session, str, str], bool]


class SignInData(msgspec.Struct):
    opter_no: Required
    mac: str = ""
    ip: str = ""


class In9001(msgspec.Struct):
    signIn: SignInData


class SignOutData(msgspec.Struct):
    opter_no: Required
    sign_no: str = ""


class In9002(msgspec.Struct):
    # The spec's node is signOut; some clients send data.
    signOut: SignOutData | None = None
    data: SignOutData | None = None


def new_sign_no() -> str:
    return f"{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**16):016d}"


def transactions(operator_active: OperatorCheck) -> TransactionSet:
    """9001 and 9002. Sign-in is the gateway's (every other transaction needs it); operators are the registry's."""
    found = TransactionSet()

    @found.register("9001", "签到", In9001, paths=("/fsi/api/signInSignOutService/signIn",), needs_sign_in=False)
    def sign_in(ctx: Context, data: In9001) -> dict:
        opter_no = data.signIn.opter_no
        if not operator_active(ctx.session, ctx.fixmedins_code, opter_no):
            raise NotFound(f"operator {opter_no} is not registered for {ctx.fixmedins_code}", field="input.signIn.opter_no")
        now = clock.now()
        record = SignIn(sign_no=new_sign_no(), fixmedins_code=ctx.fixmedins_code, opter_no=opter_no,
                        mac=data.signIn.mac[:20], ip=data.signIn.ip[:40], sign_time=now)
        ctx.session.add(record)
        return {"signinoutb": {"sign_time": clock.fmt_datetime(now), "sign_no": record.sign_no}}

    found.register("9002", "签退", In9002, paths=("/fsi/api/signInSignOutService/signOut",))(sign_out)
    return found


def sign_out(ctx: Context, data: In9002) -> dict:
    body = data.signOut or data.data
    if body is None:
        raise InputError("required node is missing", field="input.signOut")
    sign_no = body.sign_no or ctx.sign_no or ""
    record = ctx.session.get(SignIn, sign_no)
    if record is None or record.fixmedins_code != ctx.fixmedins_code:
        raise NotFound(f"no sign-in {sign_no} for this institution", field="input.signOut.sign_no")
    if record.opter_no != body.opter_no:
        raise InputError(f"sign-in {sign_no} belongs to operator {record.opter_no}", field="input.signOut.opter_no")
    if record.signout_time is not None:
        raise InputError(f"sign-in {sign_no} was already signed out", field="input.signOut.sign_no")
    record.signout_time = clock.now()
    return {"signoutoutb": {"sign_time": clock.fmt_datetime(record.signout_time)}}


_SIGN_IN = SignIn.__table__
SIGN_IN = sql.Query(SignInRow, sql.select_of(SignInRow, _SIGN_IN).where(_SIGN_IN.c.sign_no == bindparam("sign_no")))


def require_sign_in(session: Session, sign_no: str, fixmedins_code: str, ttl_s: int) -> str:
    """The sign_no, when it is a live sign-in of this institution."""
    if not sign_no:
        raise AuthError("sign in with 9001 first and send its sign_no", field="sign_no")
    return check_sign_in(sql.first(session, SIGN_IN, sign_no=sign_no), sign_no, fixmedins_code, ttl_s)


def check_sign_in(record: SignInRow | None, sign_no: str, fixmedins_code: str, ttl_s: int) -> str:
    """`require_sign_in` on a record already read (the sign_in row of ``sign_no``; None: there is none)."""
    if not sign_no:
        raise AuthError("sign in with 9001 first and send its sign_no", field="sign_no")
    if record is None or record.fixmedins_code != fixmedins_code:
        raise AuthError(f"'{sign_no[:30]}' is not a sign-in of {fixmedins_code}", field="sign_no")
    if record.signout_time is not None:
        raise AuthError(f"sign-in {sign_no} was signed out at {clock.fmt_datetime(record.signout_time)}", field="sign_no")
    if record.sign_time + timedelta(seconds=ttl_s) < clock.now():
        raise AuthError(f"sign-in {sign_no} has expired; sign in again with 9001", field="sign_no")
    return sign_no
