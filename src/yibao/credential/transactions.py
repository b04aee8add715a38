"""1162: the e-credential QR decode (ec.query) through the national gateway."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import bindparam

from yibao.core import clock
from yibao.core.schema import Required
from yibao.credential import service
from yibao.credential.models import Credential
from yibao.credential.rows import CredentialRow
from yibao.gateway.contract import Context, TransactionSet
from yibao.registry import service as registry
from yibao.store import sql

TRANSACTIONS = TransactionSet()
_CREDENTIAL = Credential.__table__
CREDENTIAL = sql.Query(CredentialRow, sql.select_of(CredentialRow, _CREDENTIAL).where(_CREDENTIAL.c.psn_no == bindparam("psn_no")))


class QrQuery(msgspec.Struct):
    ecQrCode: Required
    businessType: str = "01101"
    orgId: str = ""
    operatorId: str = ""
    operatorName: str = ""
    officeId: str = ""
    officeName: str = ""
    deviceType: str = ""
    termId: str = ""
    termIp: str = ""


class In1162(msgspec.Struct):
    data: QrQuery


def decoded_answer(session: Any, token: Any, person: Any) -> dict[str, Any]:
    """What ec.query answers: the 1101 structure plus the ecToken and the credential's fields."""
    info = registry.person_answer(session, person)
    credential = sql.first(session, CREDENTIAL, psn_no=person.psn_no)
    basic = next((i for i in info["insuinfo"] if i["insutype"] in ("310", "390")), None)
    return {
        **info,
        "ecToken": token.ec_token,
        "cardno": person.card_no or "",
        "card_sn": person.card_sn or "",
        "data": {
            "ecToken": token.ec_token, "idNo": person.certno, "idType": person.psn_cert_type, "userName": person.psn_name,
            "insuOrg": basic["insuplc_admdvs"] if basic else "", "ecIndexNo": credential.ec_index_no if credential else "",
            "gender": person.gend, "birthday": clock.fmt_date(person.brdy), "nationality": person.ntly,
            "chnlId": credential.chnl_id if credential else "", "expireTime": clock.fmt_datetime(token.expires_at),
        },
    }


@TRANSACTIONS.register("1162", "电子凭证读取", In1162, paths=("/fsi/api/hsecfc/localQrCodeQuery",))
def qr_query(ctx: Context, body: In1162) -> dict:
    token, person = service.decode(ctx.session, ctx.settings, body.data.ecQrCode, ctx.fixmedins_code, body.data.businessType)
    return decoded_answer(ctx.session, token, person)
