"""What every platform needs before its first institution: national reference data, not demo data.

Regions (GB/T 2260) and the national code tables (1901) are standards and ship with yibao; the
platform's own web app is an activation channel that needs no key. Catalogues are imported
(`yibao catalog import`), people too (`yibao people import`), institutions added by an operator
(`yibao institution add`). Idempotent: running it on a database that has these changes nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from yibao.codes import code_tables
from yibao.core import crypto
from yibao.credential.models import Channel
from yibao.registry.models import Region

PLATFORM_WEB = ("NHSA_WEB", "国家医保服务平台(网页版)", "platform_web")


def seed_reference(session: Session) -> None:
    version, begndate, values = code_tables.bundled_code_tables()
    labels = {v.value: v.label for v in values if v.type == "admdvs"}
    for code, label in labels.items():
        if session.get(Region, code) is None:
            session.add(Region(admdvs=code, name=label, prov_admdvs=code[:2] + "0000"))
    session.flush()
    code_tables.load(session, version, begndate, values)  # adds only the values not present
    chnl_id, name, kind = PLATFORM_WEB
    if session.get(Channel, chnl_id) is None:
        # the platform's own app signs nothing with this key; it exists because every channel row has one
        session.add(Channel(chnl_id=chnl_id, chnl_name=name, kind=kind, secret=crypto.new_secret(), active=True))
    session.flush()
