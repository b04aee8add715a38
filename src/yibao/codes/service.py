"""Catalogue downloads (13xx files) and paged catalogue queries."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yibao.codes.models import CatalogItem, CatalogVersion, DiseaseCode
from yibao.core import clock
from yibao.core.money import yuan
from yibao.files import service as files
from yibao.files.models import StoredFile

# infno → what the file holds
CATALOG_FILES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "1301": ("西药中成药目录", "catalog", ("101", "103", "104")),
    "1302": ("中药饮片目录", "catalog", ("102",)),
    "1305": ("医疗服务项目目录", "catalog", ("201",)),
    "1306": ("医用耗材目录", "catalog", ("301",)),
    "1307": ("疾病与诊断目录", "diag", ()),
    "1308": ("手术操作目录", "oprn", ()),
    "1309": ("门诊慢特病种目录", "opsp", ()),
}
ITEM_COLUMNS = (
    "med_list_codg", "med_list_name", "list_type", "med_chrgitm_type", "chrgitm_lv", "selfpay_prop", "pric_uplmt_amt", "lmt_gend",
    "lmt_age_min", "lmt_age_max", "lmt_hosp_lv", "rx_flag", "spec", "dosform", "pacunt", "prodentp_name", "memo", "begndate",
    "enddate", "vali_flag", "ver",
)
DISEASE_COLUMNS = ("code", "name", "chapter", "vali_flag", "ver")
# the 1309 file's columns as clients load them (门慢门特病种目录代码/名称, 大类名称, 细分类名称); the major class code is
# not known for the demo's rows, so the class name stands alone
OPSP_COLUMNS = ("opsp_dise_code", "opsp_dise_name", "opsp_dise_majcls_name", "opsp_dise_subd_clss_name", "vali_flag", "ver")


def item_wire(item: CatalogItem) -> dict[str, Any]:
    return {
        "med_list_codg": item.med_list_codg,
        "med_list_name": item.med_list_name,
        "list_type": item.list_type,
        "med_chrgitm_type": item.med_chrgitm_type,
        "chrgitm_lv": item.chrgitm_lv,
        "selfpay_prop": Decimal(str(item.selfpay_prop)).quantize(Decimal("0.0001")),
        "pric_uplmt_amt": yuan(item.pric_uplmt_fen) if item.pric_uplmt_fen is not None else None,
        "lmt_gend": item.lmt_gend or "",
        "lmt_age_min": item.lmt_age_min,
        "lmt_age_max": item.lmt_age_max,
        "lmt_hosp_lv": item.lmt_hosp_lv,
        "rx_flag": item.rx_flag,
        "spec": item.spec,
        "dosform": item.dosform,
        "pacunt": item.pacunt,
        "prodentp_name": item.prodentp_name,
        "memo": item.memo,
        "begndate": clock.fmt_date(item.begndate),
        "enddate": clock.fmt_date(item.enddate),
        "vali_flag": item.vali_flag,
        "ver": item.ver,
    }


def _tsv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")

    lines = ["\t".join(columns)] + ["\t".join(cell(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def export(session: Session, infno: str, since_ver: str, fixmedins_code: str) -> StoredFile:
    """Rows changed after ``since_ver`` ("0": all) as a zip of one tab-separated file."""
    title, kind, list_types = CATALOG_FILES[infno]
    since = "" if since_ver in ("", "0") else since_ver
    if kind == "catalog":
        items = session.scalars(
            select(CatalogItem).where(CatalogItem.list_type.in_(list_types), CatalogItem.ver > since)
            .order_by(CatalogItem.ver, CatalogItem.med_list_codg, CatalogItem.begndate)
        ).all()
        rows, columns = [item_wire(i) for i in items], ITEM_COLUMNS
    else:
        codes = session.scalars(select(DiseaseCode).where(DiseaseCode.kind == kind, DiseaseCode.ver > since)
                                .order_by(DiseaseCode.ver, DiseaseCode.code)).all()
        if kind == "opsp":
            rows = [{"opsp_dise_code": c.code, "opsp_dise_name": c.name, "opsp_dise_majcls_name": c.chapter,
                     "opsp_dise_subd_clss_name": c.name, "vali_flag": c.vali_flag, "ver": c.ver} for c in codes]
            columns = OPSP_COLUMNS
        else:
            rows = [{"code": c.code, "name": c.name, "chapter": c.chapter, "vali_flag": c.vali_flag, "ver": c.ver} for c in codes]
            columns = DISEASE_COLUMNS
    latest = session.scalar(select(func.max(CatalogVersion.ver))) or "0"
    stem = f"{infno}_{latest}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{stem}.txt", date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, _tsv(columns, rows))
    return files.save(session, f"{stem}.zip", buffer.getvalue(), owner_code=None, data_cnt=len(rows), prefix="plc")


def query_page(session: Session, *, page_num: int, page_size: int, updated_since: date | None, code: str, list_type: str,
               on: date) -> dict[str, Any]:
    """1312-style paged query of the catalogue in force on ``on``."""
    stmt = select(CatalogItem).where(CatalogItem.begndate <= on, or_(CatalogItem.enddate.is_(None), CatalogItem.enddate >= on))
    if code:
        stmt = stmt.where(CatalogItem.med_list_codg == code)
    if list_type:
        stmt = stmt.where(CatalogItem.list_type == list_type)
    if updated_since:
        stmt = stmt.where(CatalogItem.ver >= updated_since.strftime("%Y%m%d"))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = session.scalars(stmt.order_by(CatalogItem.med_list_codg).offset((page_num - 1) * page_size).limit(page_size)).all()
    pages = (total + page_size - 1) // page_size
    return {
        "pageNum": page_num,
        "pageSize": page_size,
        "size": len(items),
        "startRow": (page_num - 1) * page_size + 1 if items else 0,
        "recordCounts": total,
        "pages": pages,
        "firstPage": 1,
        "lastPage": max(pages, 1),
        "data": [item_wire(i) for i in items],
    }
