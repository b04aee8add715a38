"""Code-table and catalogue transactions: 1901, 1301–1308 downloads, 1312 paged query."""

from __future__ import annotations

from typing import Annotated

import msgspec

from yibao.codes import code_tables
from yibao.codes import service as catalog
from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.gateway.contract import Context, TransactionSet

TRANSACTIONS = TransactionSet()


class DictQuery(msgspec.Struct):
    type: Required
    admdvs: str = ""
    date: str = ""
    parentValue: str = ""
    parent_value: str = ""
    valiFlag: str = ""
    vali_flag: str = ""


class In1901(msgspec.Struct):
    data: DictQuery


@TRANSACTIONS.register("1901", "字典表查询", In1901, paths=("/fsi/api/catalogqueryservice/queryDataDic",), reads_only=True)
def code_table(ctx: Context, query: In1901) -> dict:
    q = query.data
    on = clock.parse_date(q.date, "input.data.date") if q.date else clock.today()
    entries = code_tables.query(ctx.session, q.type, q.admdvs or ctx.envelope.mdtrtarea_admvs, on,
                                q.valiFlag or q.vali_flag or None, q.parentValue or q.parent_value or None)
    if not entries:
        raise InputError(f"no code table '{q.type}' in force on {clock.fmt_date(on)}", field="input.data.type")
    return {"list": [code_tables.entry_wire(e) for e in entries]}


class VersionQuery(msgspec.Struct):
    ver: str = "0"


class In13xx(msgspec.Struct):
    data: VersionQuery


def _download(infno: str):
    def handler(ctx: Context, query: In13xx) -> dict:
        file = catalog.catalogue_file(ctx.session, infno, query.data.ver.strip())
        if file.needs_write:  # built now (or its deadline moves): stored after the read, with the call's answer
            ctx.writes.append(lambda session: catalog.keep(session, file))
        # Both spellings of the count field appear in client code (data_cnt, data_cn).
        return {"file_qury_no": file.file_qury_no, "filename": file.filename,
                "dld_end_time": clock.fmt_date(file.dld_end_time), "data_cnt": file.data_cnt, "data_cn": file.data_cnt}

    return handler


for _infno, (_title, _kind, _types) in catalog.CATALOG_FILES.items():
    TRANSACTIONS.register(_infno, f"{_title}下载", In13xx, paths=(f"/fsi/api/catalogdownservice/downCatalog{_infno}",),
                          reads_only=True)(_download(_infno))


class PageQuery(msgspec.Struct):
    # bounded so the row offset (page_num - 1) × page_size stays a 32-bit number every database takes
    page_num: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    updt_time: str = ""
    med_list_codg: str = ""
    hilist_code: str = ""
    list_type: str = ""
    date: str = ""


class In1312(msgspec.Struct):
    data: PageQuery


@TRANSACTIONS.register("1312", "医保目录信息查询", In1312, paths=("/fsi/api/catalogqueryservice/queryHilist",), reads_only=True)
def catalog_page(ctx: Context, query: In1312) -> dict:
    q = query.data
    since = clock.parse_date(q.updt_time[:10], "input.data.updt_time") if q.updt_time else None
    on = clock.parse_date(q.date, "input.data.date") if q.date else clock.today()
    page = catalog.query_page(ctx.session, page_num=q.page_num, page_size=q.page_size, updated_since=since,
                              code=(q.med_list_codg or q.hilist_code).strip().upper(), list_type=q.list_type, on=on)
    # an item without a price cap (None) is answered with the platform's "no cap" sentinel by the gateway's writer
    # (gateway/answers.yaml, 1312), never null
    return page
