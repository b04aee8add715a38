"""13xx catalogue files are built once per catalogue version and served from the stored file afterwards."""

from __future__ import annotations

import csv
import io
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from yibao.client import CounterClient
from yibao.codes import importer
from yibao.codes import service as catalog
from yibao.codes.models import CatalogItem, CatalogVersion
from yibao.core import clock
from yibao.files.models import StoredFile

HEADER = ("med_list_codg,med_list_name,list_type,med_chrgitm_type,chrgitm_lv,selfpay_prop,pric_uplmt_amt,lmt_gend,lmt_age_min,"
          "lmt_age_max,lmt_hosp_lv,rx_flag,spec,dosform,pacunt,prodentp_name,begndate,enddate,memo")


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every file build, as (infno, since, latest)."""
    made: list[tuple[str, str, str]] = []
    real = catalog.build

    def counting(session, infno, since, latest):  # type: ignore[no-untyped-def]
        made.append((infno, since, latest))
        return real(session, infno, since, latest)

    monkeypatch.setattr(catalog, "build", counting)
    return made


def new_version(db, tmp_path: Path, code: str, price: str) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / f"{code}-{price}.csv"
    path.write_text(f"{HEADER}\n{code},测试片,101,09,02,0.1,{price},,,,,1,,,,,2026-01-01,,\n", encoding="utf-8")
    with db.unit_of_work() as session:
        report = importer.import_catalog(session, path)
    assert report.ver
    return report.ver


def download(counter: CounterClient, infno: str = "1301", ver: str = "0") -> tuple[dict, bytes]:
    answer = counter.call(infno, {"data": {"ver": ver}})
    assert answer["infcode"] == 0, answer
    out = answer["output"]
    fetched = counter.call("9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": "plc",
                                                     "fixmedins_code": counter.fixmedins_code}})
    assert fetched["infcode"] == 0, fetched
    return out, fetched["file"]


def tsv_rows(content: bytes) -> tuple[list[str], list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    text = archive.read(archive.namelist()[0]).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    return list(reader.fieldnames or []), list(reader)


def test_a_file_is_built_once_per_version_and_a_new_version_makes_a_new_one(db, counter: CounterClient, tmp_path: Path,
                                                                            builds: list) -> None:  # type: ignore[no-untyped-def]
    first_ver = new_version(db, tmp_path, "XB0000000000000000000001", "10.00")
    out, content = download(counter)
    assert builds == [("1301", "", first_ver)]
    again, content_again = download(counter)
    assert builds == [("1301", "", first_ver)]  # served from the stored file
    assert again["file_qury_no"] == out["file_qury_no"] and content_again == content
    with db.unit_of_work(write=False) as session:
        copies = session.scalar(select(func.count()).select_from(StoredFile).where(StoredFile.file_qury_no == out["file_qury_no"]))
    assert copies == 1

    second_ver = new_version(db, tmp_path, "XB0000000000000000000001", "11.00")
    newer, newer_content = download(counter)
    assert builds[-1] == ("1301", "", second_ver) and len(builds) == 2
    assert newer["file_qury_no"] != out["file_qury_no"] and newer["filename"] == f"1301_{second_ver}.zip"
    _, rows = tsv_rows(newer_content)
    # the same begndate: the import corrected the row in place, and the new file says so
    assert [r["pric_uplmt_amt"] for r in rows if r["med_list_codg"] == "XB0000000000000000000001"] == ["11.00"]
    assert [r["pric_uplmt_amt"] for r in tsv_rows(content)[1] if r["med_list_codg"] == "XB0000000000000000000001"] == ["10.00"]
    assert download(counter)[1] == newer_content and len(builds) == 2


def test_the_content_is_the_catalogue_rows_as_served_before(db, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    out, content = download(counter)
    with db.unit_of_work(read_only=True) as session:
        latest = session.scalar(select(func.max(CatalogVersion.ver)))
        filename, rebuilt, count = catalog.build(session, "1301", "", latest)
        expected = session.execute(select(CatalogItem.med_list_codg, CatalogItem.ver)
                                   .where(CatalogItem.list_type.in_(("101", "103", "104")))
                                   .order_by(CatalogItem.ver, CatalogItem.med_list_codg, CatalogItem.begndate)).all()
    assert content == rebuilt and out["filename"] == filename == f"1301_{latest}.zip" and out["data_cnt"] == count == len(expected)
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.namelist() == [f"1301_{latest}.txt"]
    columns, rows = tsv_rows(content)
    assert tuple(columns) == catalog.ITEM_COLUMNS
    assert [(r["med_list_codg"], r["ver"]) for r in rows] == [tuple(e) for e in expected]
    assert out["dld_end_time"] == clock.fmt_date(clock.today() + timedelta(days=7))


def test_any_ver_between_two_imports_shares_one_file(db, counter: CounterClient, tmp_path: Path, builds: list) -> None:  # type: ignore[no-untyped-def]
    older = new_version(db, tmp_path, "XB0000000000000000000002", "20.00")
    newer = new_version(db, tmp_path, "XB0000000000000000000003", "21.00")
    builds.clear()
    at_older, content = download(counter, ver=older)
    between, _ = download(counter, ver=older + "5")  # a made-up ver after the older import: the same rows are newer
    assert between["file_qury_no"] == at_older["file_qury_no"] and len(builds) == 1
    assert [r["med_list_codg"] for r in tsv_rows(content)[1]] == ["XB0000000000000000000003"]
    past_latest, empty = download(counter, ver=newer + "9")
    assert past_latest["data_cnt"] == 0 and tsv_rows(empty)[1] == []


def test_diagnoses_and_other_catalogues_have_files_of_their_own(counter: CounterClient, builds: list) -> None:
    diagnoses, content = download(counter, "1307")
    procedures, _ = download(counter, "1308")
    assert diagnoses["file_qury_no"] != procedures["file_qury_no"]
    assert any(r["code"] == "I10.x00" for r in tsv_rows(content)[1])
    assert download(counter, "1307")[0]["file_qury_no"] == diagnoses["file_qury_no"]
    assert [b[0] for b in builds] == ["1307", "1308"]


def test_an_old_file_is_kept_downloadable(db, counter: CounterClient, builds: list) -> None:  # type: ignore[no-untyped-def]
    out, content = download(counter, "1302")
    with db.unit_of_work() as session:
        session.execute(update(StoredFile).where(StoredFile.file_qury_no == out["file_qury_no"])
                        .values(dld_end_time=clock.today() - timedelta(days=1)))
    again, again_content = download(counter, "1302")  # 9102 would refuse an expired file: the request extends it
    assert again["file_qury_no"] == out["file_qury_no"] and again_content == content
    assert again["dld_end_time"] == clock.fmt_date(clock.today() + timedelta(days=7))
    assert [b[0] for b in builds].count("1302") <= 1


def test_concurrent_first_requests_build_once_and_keep_one_copy(db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    new_version(db, tmp_path, "XB0000000000000000000004", "30.00")
    made: list[int] = []
    real = catalog.build

    def slow(session, infno, since, latest):  # type: ignore[no-untyped-def]
        made.append(1)
        time.sleep(0.3)  # long enough for the second request to arrive while the first builds
        return real(session, infno, since, latest)

    monkeypatch.setattr(catalog, "build", slow)
    files: list[catalog.CatalogueFile] = []

    def request() -> None:
        with db.unit_of_work(read_only=True) as session:
            file = catalog.catalogue_file(session, "1306", "0")
        with db.unit_of_work() as session:
            catalog.keep(session, file)
        files.append(file)

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1] and len(files) == 2
    assert files[0].file_qury_no == files[1].file_qury_no and files[0].content == files[1].content is not None
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(StoredFile).where(StoredFile.file_qury_no == files[0].file_qury_no)) == 1
