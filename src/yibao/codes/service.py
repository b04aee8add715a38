"""Catalogue downloads (13xx files) and paged catalogue queries."""

from __future__ import annotations

import io
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yibao.codes.models import CatalogItem, CatalogVersion, DiseaseCode
from yibao.core import clock, crypto
from yibao.core.money import yuan
from yibao.files import service as files

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


@dataclass(frozen=True)
class CatalogueFile:
    """A 13xx answer's file: ``content`` is set when this request built it (then it is stored after the read)."""

    file_qury_no: str
    filename: str
    data_cnt: int
    dld_end_time: date
    content: bytes | None = None
    # the stored file's download deadline is extended (at most once a day: the answer promises DOWNLOAD_DAYS from today)
    extend: bool = False

    @property
    def needs_write(self) -> bool:
        return self.content is not None or self.extend


def catalogue_file(session: Session, infno: str, since_ver: str) -> CatalogueFile:
    """The file of the catalogue's rows changed after ``since_ver`` ("0": all), a zip of one tab-separated file.

    Built once per (catalogue, version asked for, latest catalogue version) and stored under a number derived from
    them; every later request answers that number. An import makes a new latest version, so a new file. Only reads:
    what must be written goes through `keep`, after the read (a read-only transaction cannot write)."""
    _title, kind, list_types = CATALOG_FILES[infno]
    latest = session.scalar(select(func.max(CatalogVersion.ver))) or "0"
    since = _since(session, kind, list_types, "" if since_ver in ("", "0") else since_ver)
    number = file_number(infno, since, latest)
    until = clock.today() + timedelta(days=files.DOWNLOAD_DAYS)
    stored = files.describe(session, number)
    if stored is not None:
        filename, data_cnt, deadline = stored
        return CatalogueFile(number, filename, data_cnt, max(deadline, until), extend=deadline < until)
    # keyed by database too: two databases of one process (tests, tools) may share a latest version's name
    where = session.get_bind().engine.url.render_as_string(hide_password=True)
    filename, content, data_cnt = _BUILDS.once((where, number), lambda: build(session, infno, since, latest))
    return CatalogueFile(number, filename, data_cnt, until, content=content)


def keep(session: Session, file: CatalogueFile) -> None:
    """Store a file `catalogue_file` built (a concurrent twin's identical copy may be there first) or extend its deadline."""
    if file.content is not None:
        files.save_once(session, file.file_qury_no, file.filename, file.content, data_cnt=file.data_cnt, dld_end_time=file.dld_end_time)
    files.extend(session, file.file_qury_no, file.dld_end_time)


def file_number(infno: str, since: str, latest: str) -> str:
    """file_qury_no of a catalogue file: "plc" + infno + a digest of what decides its content (40 characters, the column)."""
    return f"plc{infno}{crypto.sm3_hex(f'{infno}|{since}|{latest}'.encode())[:33]}"


def _since(session: Session, kind: str, list_types: tuple[str, ...], since: str) -> str:
    """The newest version among the catalogue's rows at or before ``since``: the same rows are newer than either, so any
    ``ver`` a client sends between two imports shares one file (and a made-up ``ver`` cannot make a new file a call)."""
    if not since:
        return ""
    if kind == "catalog":
        stmt = select(func.max(CatalogItem.ver)).where(CatalogItem.list_type.in_(list_types), CatalogItem.ver <= since)
    else:
        stmt = select(func.max(DiseaseCode.ver)).where(DiseaseCode.kind == kind, DiseaseCode.ver <= since)
    return session.scalar(stmt) or ""


def build(session: Session, infno: str, since: str, latest: str) -> tuple[str, bytes, int]:
    """(file name, zip bytes, row count) of the rows changed after ``since``; the same bytes for the same rows."""
    _title, kind, list_types = CATALOG_FILES[infno]
    columns: tuple[str, ...]
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
    stem = f"{infno}_{latest}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{stem}.txt", date_time=(2020, 1, 1, 0, 0, 0))  # a fixed date: the same rows, the same bytes
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, _tsv(columns, rows))
    return f"{stem}.zip", buffer.getvalue(), len(rows)


class _OneBuild:
    """Concurrent first requests for one file in this process build it once: the others wait for the first and take its
    bytes (each then stores them; the copies are identical and one row is kept). Holds the last few files built."""

    def __init__(self, keep: int = 4) -> None:
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}
        self._built: OrderedDict[tuple[str, str], tuple[str, bytes, int]] = OrderedDict()
        self._keep = keep

    def once(self, key: tuple[str, str], make: Callable[[], tuple[str, bytes, int]]) -> tuple[str, bytes, int]:
        with self._lock:
            if key in self._built:
                return self._built[key]
            guard = self._building.setdefault(key, threading.Lock())
        with guard:
            with self._lock:
                if key in self._built:
                    return self._built[key]
            try:
                built = make()
                with self._lock:
                    self._built[key] = built
                    while len(self._built) > self._keep:
                        self._built.popitem(last=False)
                return built
            finally:
                with self._lock:
                    self._building.pop(key, None)


_BUILDS = _OneBuild()


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
