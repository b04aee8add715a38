"""Code tables (1901), catalogue versions, import, downloads (13xx + 9102), paged query (1312), files (9101)."""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import PHARMACY_OTHER_REGION, secret_of
from yibao.client import CounterClient
from yibao.codes import code_tables, importer
from yibao.codes.models import CatalogItem
from yibao.core.errors import InputError


def test_1901_code_table(counter: CounterClient) -> None:
    answer = counter.call("1901", {"data": {"type": "insutype", "admdvs": "370100", "date": "2026-11-01", "valiFlag": "1"}})
    assert answer["infcode"] == 0
    rows = answer["output"]["list"]
    assert {r["value"]: r["label"] for r in rows}["310"] == "职工基本医疗保险"
    assert set(rows[0]) == {"type", "label", "value", "parent_value", "sort", "vali_flag", "create_user", "create_date", "version"}
    assert [r["sort"] for r in rows] == sorted(r["sort"] for r in rows)


def test_1901_children_and_local_values(counter: CounterClient, http) -> None:  # type: ignore[no-untyped-def]
    children = counter.call("1901", {"data": {"type": "psn_type", "parentValue": "11"}})["output"]["list"]
    assert {r["value"] for r in children} == {"1101", "1102", "1103"}
    national = {r["value"] for r in counter.call("1901", {"data": {"type": "med_type", "admdvs": "370100"}})["output"]["list"]}
    shenzhen = {r["value"] for r in counter.call("1901", {"data": {"type": "med_type", "admdvs": "440300"}})["output"]["list"]}
    assert "9901" in shenzhen - national


def test_1901_refusals(counter: CounterClient) -> None:
    unknown = counter.call("1901", {"data": {"type": "no_such_table"}})
    assert unknown["infcode"] == -1 and unknown["err_msg"].startswith("input.data.type:")
    missing = counter.call("1901", {"data": {}})
    assert missing["infcode"] == -1 and missing["err_msg"].startswith("input.data.type:")
    bad_date = counter.call("1901", {"data": {"type": "gend", "date": "31/12/2026"}})
    assert bad_date["infcode"] == -1 and bad_date["err_msg"].startswith("input.data.date:")


def test_code_table_yaml_errors_name_the_key() -> None:
    with pytest.raises(InputError, match="tables.gend needs a non-empty 'values'"):
        code_tables.parse_code_tables({"version": "1", "begndate": date(2021, 1, 1), "tables": {"gend": {"values": {}}}})
    with pytest.raises(InputError, match="missing top-level key"):
        code_tables.parse_code_tables({"tables": {}})


def download(counter: CounterClient, infno: str, ver: str = "0") -> tuple[dict, list[dict[str, str]]]:
    answer = counter.call(infno, {"data": {"ver": ver}})
    assert answer["infcode"] == 0, answer
    out = answer["output"]
    fetched = counter.call("9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": out["filename"],
                                                     "fixmedins_code": counter.fixmedins_code}})
    archive = zipfile.ZipFile(io.BytesIO(fetched["file"]))
    text = archive.read(archive.namelist()[0]).decode("utf-8")
    return out, list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def test_catalogue_download_through_9102(counter: CounterClient) -> None:
    out, rows = download(counter, "1301")
    assert out["data_cnt"] == len(rows) > 150
    assert all(r["list_type"] == "101" for r in rows)
    assert {r["chrgitm_lv"] for r in rows} == {"01", "02", "03"}
    _, services = download(counter, "1305")
    assert all(len(r["med_list_codg"]) == 15 for r in services)
    _, diagnoses = download(counter, "1307")
    assert any(r["code"] == "I10.x00" for r in diagnoses)


def test_9102_refusals(counter: CounterClient, http) -> None:  # type: ignore[no-untyped-def]
    missing = counter.call("9102", {"fsDownloadIn": {"file_qury_no": "nope", "filename": "x"}})
    assert missing["infcode"] == -1 and missing["err_msg"].startswith("input.fsDownloadIn.file_qury_no:")
    uploaded = counter.call("9101", {"fsUploadIn": {"filename": "detail.txt", "in": base64.b64encode(b"a\tb\n").decode()}})
    assert uploaded["infcode"] == 0
    number = uploaded["output"]["file_qury_no"]
    own = counter.call("9102", {"fsDownloadIn": {"file_qury_no": number, "filename": "detail.txt"}})
    assert own["file"] == b"a\tb\n"
    other = CounterClient("http://testserver", PHARMACY_OTHER_REGION, secret_of(PHARMACY_OTHER_REGION), http=http, mdtrtarea_admvs="440300")
    assert other.sign_in()["infcode"] == 0
    stranger = other.call("9102", {"fsDownloadIn": {"file_qury_no": number, "filename": "detail.txt"}})
    assert stranger["infcode"] == -1
    bytes_list = counter.call("9101", {"fsUploadIn": {"filename": "b.bin", "in": [1, 2, 255]}})
    assert bytes_list["infcode"] == 0
    bad = counter.call("9101", {"fsUploadIn": {"filename": "c.bin", "in": "not base64!"}})
    assert bad["infcode"] == -1 and bad["err_msg"].startswith("input.fsUploadIn.in:")


def test_1312_paged_query(counter: CounterClient) -> None:
    first = counter.call("1312", {"data": {"page_num": 1, "page_size": 50, "list_type": "201"}})["output"]
    assert first["recordCounts"] == 70 and first["pages"] == 2 and len(first["data"]) == 50
    second = counter.call("1312", {"data": {"page_num": "2", "page_size": "50", "list_type": "201"}})["output"]
    assert len(second["data"]) == 20
    assert not {r["med_list_codg"] for r in first["data"]} & {r["med_list_codg"] for r in second["data"]}
    too_big = counter.call("1312", {"data": {"page_num": 1, "page_size": 5000}})
    assert too_big["infcode"] == -1 and too_big["err_msg"].startswith("input.data.page_size:")


HEADER = ("med_list_codg,med_list_name,list_type,med_chrgitm_type,chrgitm_lv,selfpay_prop,pric_uplmt_amt,lmt_gend,lmt_age_min,"
          "lmt_age_max,lmt_hosp_lv,rx_flag,spec,dosform,pacunt,prodentp_name,begndate,enddate,memo")


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_import_reports_every_bad_row(tmp_path: Path, db) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "bad.csv", [
        "XJ01CAA999A001010100001,测试胶囊,101,09,02,0.1,10.00,,,,,1,,,,,2026-01-01,,",  # good
        "QQ1,坏编码,101,09,02,0.1,10.00,,,,,1,,,,,2026-01-01,,",  # code shape
        "XJ01CAA999A001010100002,坏等级,101,09,07,0.1,10.00,,,,,1,,,,,2026-01-01,,",  # level
        "XJ01CAA999A001010100003,坏价格,101,09,02,0.1,1.234,,,,,1,,,,,2026-01-01,,",  # price
        "XJ01CAA999A001010100004,坏日期,101,09,02,0.1,10.00,,,,,1,,,,,2026-13-01,,",  # date
        ",无编码,101,09,02,0.1,10.00,,,,,1,,,,,2026-01-01,,",  # missing code
        "XJ01CAA999A001010100001,重复,101,09,02,0.1,10.00,,,,,1,,,,,2026-01-01,,",  # duplicate of row 2
        "XJ01CAA999A001010100005,坏年龄,101,09,02,0.1,10.00,,200,,,1,,,,,2026-01-01,,",  # age
    ])
    with db.unit_of_work() as session:
        report = importer.import_catalog(session, path)
    assert report.rows_read == 8 and report.added == 1
    reasons = {(r.row, r.column) for r in report.rejected}
    assert reasons == {(3, "med_list_codg"), (4, "chrgitm_lv"), (5, "pric_uplmt_amt"), (6, "begndate"), (7, "med_list_codg"),
                       (8, "med_list_codg"), (9, "lmt_age_min")}


def test_versions_close_old_rows_and_incremental_download_sees_only_changes(tmp_path: Path, db, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    code = "XJ01CAA998A001010100001"
    with db.unit_of_work() as session:
        first = importer.import_catalog(session,
                                        write_csv(tmp_path / "v1.csv", [f"{code},版本胶囊,101,09,02,0.1,10.00,,,,,1,,,,,2025-01-01,,"]))
    with db.unit_of_work() as session:
        same = importer.import_catalog(session,
                                       write_csv(tmp_path / "v1b.csv", [f"{code},版本胶囊,101,09,02,0.1,10.00,,,,,1,,,,,2025-01-01,,"]))
    assert (first.added, same.added, same.changed, same.unchanged) == (1, 0, 0, 1)
    with db.unit_of_work() as session:
        second = importer.import_catalog(session,
                                         write_csv(tmp_path / "v2.csv", [f"{code},版本胶囊,101,09,01,0,12.00,,,,,1,,,,,2026-03-01,,"]))
    assert second.changed == 1 and second.ver > first.ver
    with db.unit_of_work(write=False) as session:
        versions = session.scalars(select(CatalogItem).where(CatalogItem.med_list_codg == code).order_by(CatalogItem.begndate)).all()
    assert [(v.chrgitm_lv, v.begndate, v.enddate) for v in versions] == [("02", date(2025, 1, 1), date(2026, 2, 28)),
                                                                         ("01", date(2026, 3, 1), None)]
    _, rows = download(counter, "1301", ver=first.ver)
    assert {r["med_list_codg"] for r in rows} == {code} and len(rows) == 2
    on_old_day = counter.call("1312", {"data": {"med_list_codg": code, "date": "2025-06-01"}})["output"]["data"]
    assert [r["chrgitm_lv"] for r in on_old_day] == ["02"]


def test_excel_import(tmp_path: Path, db) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(["C0201999000000000001", "测试注射器", "301", "08", "01", 0, 0.8, None, None, None, None, "0", "", "", "个", "",
                  date(2026, 1, 1), None, ""])
    sheet.append(["C0201999000000000002", "坏类别", "301", "99", "01", 0, 0.8, None, None, None, None, "0", "", "", "个", "",
                  date(2026, 1, 1), None, ""])
    path = tmp_path / "items.xlsx"
    book.save(path)
    with db.unit_of_work() as session:
        report = importer.import_catalog(session, path)
    assert report.added == 1 and [(r.row, r.column) for r in report.rejected] == [(3, "med_chrgitm_type")]
    with db.unit_of_work(write=False) as session:
        item = session.scalar(select(CatalogItem).where(CatalogItem.med_list_codg == "C0201999000000000001"))
        assert item.pric_uplmt_fen == 80 and item.begndate == date(2026, 1, 1)
