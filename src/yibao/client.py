"""A small signed client of the national interface, for `yibao call`, examples and tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from yibao.core import clock
from yibao.gateway.auth import sign_headers
from yibao.gateway.envelope import DECODER, ENCODER

GATEWAY_PATH = "/fsi/api/rsfComIfsService/callService"
# One sequence for every client in the process, so two counters of one institution never share a msgid.
_MSG_SEQUENCE = itertools.count(1)


@dataclass
class CounterClient:
    """What a hospital counter (HIS) does: build envelopes, sign them, keep the sign_no."""

    base_url: str
    fixmedins_code: str
    secret: str
    access_key: str = ""
    mdtrtarea_admvs: str = "370100"
    opter: str = "0001"
    opter_name: str = "收费员"
    fixmedins_name: str = ""
    sign_no: str = ""
    http: httpx.Client | None = None

    def __post_init__(self) -> None:
        self.access_key = self.access_key or self.fixmedins_code
        self.http = self.http or httpx.Client(base_url=self.base_url, timeout=30)

    def new_msgid(self) -> str:
        return f"{self.fixmedins_code}{clock.now():%Y%m%d%H%M%S}{next(_MSG_SEQUENCE) % 10000:04d}"

    def envelope(self, infno: str, input_: dict[str, Any], *, msgid: str | None = None, insuplc_admdvs: str = "") -> dict[str, Any]:
        return {
            "infno": infno, "msgid": msgid or self.new_msgid(), "mdtrtarea_admvs": self.mdtrtarea_admvs,
            "insuplc_admdvs": insuplc_admdvs, "recer_sys_code": "YBXT", "dev_no": "", "dev_safe_info": "", "cainfo": "",
            "signtype": "", "infver": "V1.0", "opter_type": "1", "opter": self.opter, "opter_name": self.opter_name,
            "inf_time": clock.fmt_datetime(clock.now()), "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": self.fixmedins_name, "sign_no": self.sign_no, "input": input_,
        }

    def send(self, envelope: dict[str, Any]) -> dict[str, Any]:
        body = ENCODER.encode(envelope)
        headers = {"content-type": "application/json; charset=utf-8", **sign_headers(self.access_key, self.secret, body)}
        assert self.http is not None
        reply = self.http.post(GATEWAY_PATH, content=body, headers=headers)
        reply.raise_for_status()
        if reply.headers.get("content-type", "").startswith("application/octet-stream"):
            return {"infcode": 0, "file": reply.content}
        return DECODER.decode(reply.content)

    def call(self, infno: str, input_: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.send(self.envelope(infno, input_, **kwargs))

    def sign_in(self, mac: str = "00-16-3E-00-00-01", ip: str = "127.0.0.1") -> dict[str, Any]:
        answer = self.call("9001", {"signIn": {"opter_no": self.opter, "mac": mac, "ip": ip}})
        if answer.get("infcode") == 0:
            self.sign_no = answer["output"]["signinoutb"]["sign_no"]
        return answer


def pretty(document: Any) -> str:
    """Indented JSON with amounts written exactly as on the wire."""
    if isinstance(document, dict) and isinstance(document.get("file"), bytes):
        document = {**document, "file": f"<{len(document['file'])} bytes>"}
    return msgspec.json.format(ENCODER.encode(document), indent=2).decode()
