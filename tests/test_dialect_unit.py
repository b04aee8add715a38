"""Regional dialects as data: loading and checking the files, and translating both ways (gateway/dialect.py, pure)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from yibao.core.errors import AuthError
from yibao.gateway import dialect
from yibao.gateway.dialect import DialectError, Translation

NATIONAL: dict[str, Any] = {"name": "national"}


def load(**documents: Any) -> dialect.Dialects:
    documents.setdefault("national", NATIONAL)
    return dialect.Dialects(dialect.parse({stem: (f"{stem}.yaml", doc) for stem, doc in documents.items()}))


def shipped(name: str) -> dialect.Dialect:
    return dialect.bundled()[name]


def envelope(infno: str, input_: Any, **fields: Any) -> dict[str, Any]:
    return {"infno": infno, "msgid": "M1", "mdtrtarea_admvs": "440300", "fixmedins_code": "H44030000001", "opter": "01",
            "opter_type": "1", "inf_time": "2026-11-23 10:00:00", "input": input_, **fields}


# -- the shipped files -------------------------------------------------------------------------------

def test_the_shipped_dialects_load_and_guangzhou_is_a_variant_of_guangdong() -> None:
    dialects = dialect.bundled()
    assert dialects.names() == ["guangdong", "guangzhou", "national"]
    assert not dialects["national"].translates and dialects["national"].paths == ()
    gd, gz = dialects["guangdong"], dialects["guangzhou"]
    assert gz.extends == "guangdong" and gz.paths == () and gz.regions == ()  # chosen by binding only
    assert gz.rule("2201") == gd.rule("2201") and gz.rule("1101").answer_shape == {"output": "list"}
    assert gd.rule("1101").answer_shape == {}
    assert dialects.routes() == [("/ebus/{account}/{env}/hsa/hgs/{infno}", "guangdong"), ("/ebus/{account}/{env}/hsa/hgs", "guangdong")]
    assert gd.schemes == frozenset({"tif", "front"}) and gd.tif_nonce_min == 1


def test_paths_select_their_dialect_and_the_infno_segment_is_a_transaction_number() -> None:
    dialects = dialect.bundled()
    assert dialects.prefixes() == {"/ebus": "guangdong"}
    assert dialects.match("/ebus/gdyb_api/prd/hsa/hgs/2203A") == ("guangdong", "2203A")
    assert dialects.match("/ebus/gdyb_inf/poc/hsa/hgs/90100") == ("guangdong", "90100")
    assert dialects.match("/ebus/gdyb_inf/poc/hsa/hgs") == ("guangdong", None)
    assert dialects.match("/ebus/gdyb_inf/poc/hsa/hgs/") == ("guangdong", None)
    for other in ("/ebus/gdyb_inf/poc/hsa/hgs/hello", "/ebus/gdyb_inf/poc/hsa/hgs/2201/x", "/ebus/x/hsa/hgs/2201", "/fsi/api/x/y"):
        assert dialects.match(other) is None, other


def test_an_institution_is_bound_to_its_regions_dialect() -> None:
    dialects = dialect.bundled()
    assert dialects.for_region("440300") == "guangdong" and dialects.for_region("440100") == "guangdong"
    assert dialects.for_region("370100") is None


def test_the_keys_binding_wins_over_the_path_and_national_is_no_translation() -> None:
    dialects = dialect.bundled()
    assert dialects.translation(None, None) is None
    assert dialects.translation("national", "guangdong") is None
    assert dialects.translation("guangzhou", "guangdong").dialect.name == "guangzhou"  # type: ignore[union-attr]
    assert dialects.translation(None, "guangdong").dialect.name == "guangdong"  # type: ignore[union-attr]
    with pytest.raises(AuthError, match="bound to dialect 'hainan'"):
        dialects.translation("hainan", None)


# -- checking a file -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "message"), [
    ({"name": "gd", "colour": "red"}, "gd.yaml: colour: unknown key"),
    ({"name": "other"}, "gd.yaml: name: 'other' must be the file's name (gd.yaml)"),
    ({"name": "gd", "transactions": {"22O1": {}}}, "gd.yaml: transactions.22O1: '22O1' is not a transaction number"),
    ({"name": "gd", "transactions": {"2201": {"nodes": {"mdtrtinfo": "data"}, "flatten": "x"}}}, "transactions.2201.flatten: unknown key"),
    ({"name": "gd", "transactions": {"2201": {"nodes": {"mdtrt info": "data"}}}},
     "transactions.2201.nodes.mdtrt info: 'mdtrt info' is not a node"),
    ({"name": "gd", "transactions": {"1101": {"answer": {"shape": {"output": "table"}}}}}, "'table' is not one of list, object"),
    ({"name": "gd", "transactions": {"1101": {"answer": {"shape": {"data": "list"}}}}}, "an answer path starts at output"),
    ({"name": "gd", "paths": ["ebus/{infno}"]}, "paths[0]: 'ebus/{infno}' is not a path"),
    ({"name": "gd", "paths": ["/ebus/{infno}/x"]}, "{infno} must be the last segment"),
    ({"name": "gd", "paths": ["/fsi/api/x/{infno}"]}, "under /fsi/, which the platform serves itself"),
    ({"name": "gd", "paths": ["/console/{infno}"]}, "under /console/"),
    ({"name": "gd", "paths": ["/{infno}"]}, "must begin with a literal segment"),
    ({"name": "gd", "auth": {"schemes": ["tif", "oauth"]}}, "auth.schemes[1]: 'oauth' is not one of yibao, csb, tif, front"),
    ({"name": "gd", "auth": {"tif_nonce_min": 0}}, "auth.tif_nonce_min: must be a whole number from 1 to 64"),
    ({"name": "gd", "gateway_errors": {"wrapper": {"code": "{code}"}}}, "put \"{message}\" where it goes"),
    ({"name": "gd", "gateway_errors": {"wrapper": {"m": "{message}"}, "codes": {"teapot": "418"}}}, "gateway_errors.codes.teapot: unknown"),
    ({"name": "gd", "answer": {"infcode": "boolean"}}, "answer.infcode: 'boolean' is number"),
    ({"name": "gd", "answer": {"empty_output": []}}, "answer.empty_output: is {}"),
    ({"name": "gd", "dates": {"in": ["dd.MM.yy"], "datetime_fields": ["*time"]}}, "dates.in[0]: 'dd.MM.yy' is not a date pattern"),
    ({"name": "gd", "dates": {"in": ["yyyyMMdd"]}}, "dates: name the fields the formats apply to"),
    ({"name": "gd", "dates": {"out": {"date": "yyyyMMdd"}, "date_fields": ["*date"]}}, "dates.out: names both datetime and date"),
    ({"name": "gd", "extends": "hainan"}, "gd.yaml: extends: no dialect 'hainan'"),
    ({"name": "gd", "regions": ["4"]}, "regions[0]: '4' is not a region code"),
    ("just text", "gd.yaml: must be a mapping"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_key(document: Any, message: str) -> None:
    with pytest.raises(DialectError) as refused:
        load(gd=document)
    assert message in str(refused.value)


def test_cycles_shared_paths_and_a_national_file_with_rules_are_refused() -> None:
    with pytest.raises(DialectError, match="a cycle"):
        load(a={"name": "a", "extends": "b"}, b={"name": "b", "extends": "a"})
    with pytest.raises(DialectError, match="claimed by a too"):
        load(a={"name": "a", "paths": ["/x/{account}/{infno}"]}, b={"name": "b", "paths": ["/x/{tenant}/{infno}"]})
    with pytest.raises(DialectError, match="national dialect is the canonical interface"):
        load(national={"name": "national", "answer": {"infcode": "string"}})
    with pytest.raises(DialectError, match="no national.yaml"):
        dialect.Dialects(dialect.parse({"a": ("a.yaml", {"name": "a"})}))


def test_a_folder_with_broken_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "national.yaml").write_text("name: national\n", encoding="utf-8")
    (tmp_path / "hainan.yaml").write_text("name: hainan\ntransactions: {2201: [\n", encoding="utf-8")
    with pytest.raises(DialectError, match="hainan.yaml: not YAML"):
        dialect.load_folder(tmp_path)


def test_a_variant_inherits_and_a_null_removes_a_parents_key() -> None:
    dialects = load(base={"name": "base", "regions": ["46"], "paths": ["/hn/{infno}"], "answer": {"infcode": "string"},
                          "transactions": {"2201": {"nodes": {"mdtrtinfo": "data", "visit": "data"}}}},
                    city={"name": "city", "extends": "base", "answer": {"infcode": None},
                          "transactions": {"2201": {"nodes": {"visit": None}}, "1101": {"answer": {"shape": {"output": "list"}}}}})
    city = dialects["city"]
    assert city.infcode == "number" and city.paths == () and city.regions == ()
    assert city.rule("2201").nodes == {"mdtrtinfo": "data"} and city.rule("1101").answer_shape == {"output": "list"}
    assert dialects.for_region("460100") == "base"


def test_shared_transaction_keys_and_star_rules_merge() -> None:
    d = load(x={"name": "x", "transactions": {"*": {"fields": {"data": {"psn_id": "psn_no"}}},
                                                  "2206, 2207": {"nodes": {"mdtrtinfo": "data"}},
                                                  "2207": {"fields": {"data": {"acct_flag": "acct_used_flag"}}}}})["x"]
    assert d.rule("2206").nodes == {"mdtrtinfo": "data"} and d.rule("2206").fields == {"data": {"psn_id": "psn_no"}}
    assert d.rule("2207").fields == {"data": {"psn_id": "psn_no", "acct_flag": "acct_used_flag"}}
    assert d.rule("1101").fields == {"data": {"psn_id": "psn_no"}}


# -- inbound ---------------------------------------------------------------------------------------------

def test_guangzhou_nodes_become_the_national_ones_and_the_document_is_left_alone() -> None:
    sent = envelope("2207", {"mdtrtinfo": {"mdtrt_id": "1", "psn_no": "P", "medfee_sumamt": "12.30"}, "setldetail": []})
    t = Translation(shipped("guangdong"))
    national = t.inbound(sent)
    assert national["input"] == {"data": {"mdtrt_id": "1", "psn_no": "P", "medfee_sumamt": "12.30"}, "setldetail": []}
    assert "mdtrtinfo" in sent["input"] and "data" not in sent["input"]  # a copy was translated


def test_the_national_node_wins_when_both_are_sent() -> None:
    national = Translation(shipped("guangdong")).inbound(envelope("2201", {"data": {"psn_no": "A"}, "mdtrtinfo": {"psn_no": "B"}}))
    assert national["input"]["data"] == {"psn_no": "A"}


def test_flat_input_is_wrapped_and_the_9001_data_node_is_signin() -> None:
    gd = shipped("guangdong")
    assert Translation(gd).inbound(envelope("2404", {"mdtrt_id": "1", "psn_no": "P"}))["input"] == {"data": {"mdtrt_id": "1",
                                                                                                             "psn_no": "P"}}
    assert Translation(gd).inbound(envelope("2404", {"data": {"mdtrt_id": "1"}}))["input"] == {"data": {"mdtrt_id": "1"}}
    signed = Translation(gd).inbound(envelope("9001", {"data": {"opter_no": "01", "mac": "11-11", "userid": "u", "password": "ab",
                                                                 "currenttime": "20261123100000"}}))
    assert signed["input"]["signIn"]["opter_no"] == "01" and signed["input"]["signIn"]["currenttime"] == "2026-11-23 10:00:00"


def test_field_aliases_rename_in_objects_and_in_every_row_of_a_list() -> None:
    gd = shipped("guangdong")
    admitted = Translation(gd).inbound(envelope("2401", {"mdtrtinfo": {"ipt_otp_no": "ZY1", "main_cond_desc": "腹痛", "dise_code": "K35"}}))
    assert admitted["input"]["mdtrtinfo"] == {"ipt_no": "ZY1", "main_cond_dscr": "腹痛", "dise_codg": "K35"}
    both = Translation(gd).inbound(envelope("2401", {"mdtrtinfo": {"ipt_no": "ZY1", "ipt_otp_no": "MZ9"}}))
    assert both["input"]["mdtrtinfo"] == {"ipt_no": "ZY1"}  # HSA sends both: the national one wins
    fees = Translation(gd).inbound(envelope("2301", {"feedetail": [{"frqu_dscr": "tid"}, {"used_frqu_dscr": "bid"}]}))
    assert fees["input"]["feedetail"] == [{"used_frqu_dscr": "tid"}, {"used_frqu_dscr": "bid"}]
    discharged = Translation(gd).inbound(envelope("2402", {"mdtrtinfo": {"dscg_dept_code": "A04", "cmplct_flag": "0"}}))
    assert discharged["input"] == {"dscginfo": {"dscg_dept_codg": "A04", "cop_flag": "0"}}


def test_a_blank_region_is_the_institutions_and_compact_dates_become_national() -> None:
    sent = envelope("2201", {"mdtrtinfo": {"begntime": "20261123093000", "brdy": "1980-02-03 00:00:00", "geso_val": "20261123"}},
                    mdtrtarea_admvs="", inf_time="20261123093001")
    national = Translation(shipped("guangdong")).inbound(sent)
    assert national["mdtrtarea_admvs"] == "440300" and national["inf_time"] == "2026-11-23 09:30:01"
    data = national["input"]["data"]
    assert data["begntime"] == "2026-11-23 09:30:00" and data["brdy"] == "1980-02-03"  # a datetime in a date field: truncated
    assert data["geso_val"] == "20261123"  # not a date field: untouched


def test_input_sent_as_a_json_string_is_translated_too() -> None:
    national = Translation(shipped("guangdong")).inbound(envelope("2208", '{"mdtrtinfo":{"setl_id":"S1","amt":1.10}}'))
    assert national["input"] == {"data": {"setl_id": "S1", "amt": Decimal("1.10")}}


# -- outbound --------------------------------------------------------------------------------------------

def answer(output: Any, **fields: Any) -> dict[str, Any]:
    return {"infcode": 0, "inf_refmsgid": "x", "refmsg_time": "20261123100000000", "respond_time": "20261123100000001", "err_msg": "",
            "warn_msg": "", "cainfo": "", "signtype": "", "output": output, **fields}


def test_guangdong_answers_infcode_as_a_string_and_writes_the_keys_its_clients_read() -> None:
    t = Translation(shipped("guangdong"), "2207")
    out = t.outbound(answer({"setlinfo": {"psn_part_amt": Decimal("12.30"), "setl_id": "S"}, "setldetail": []}))
    assert out["infcode"] == "0"
    assert out["output"]["setlinfo"]["psn_part_am"] == Decimal("12.30") and out["output"]["setlinfo"]["psn_part_amt"] == Decimal("12.30")
    assert out["output"]["voladetail"] == []
    registered = Translation(shipped("guangdong"), "2201").outbound(answer({"data": {"mdtrt_id": "1"}}))
    assert registered["output"]["data"] == {"mdtrt_id": "1", "vola_type": "", "vola_dscr": ""}
    signed = Translation(shipped("guangdong"), "9001").outbound(answer({"signinoutb": {"sign_no": "N", "sign_time": "t"}}))
    assert signed["output"]["result"] == signed["output"]["signinoutb"] == {"sign_no": "N", "sign_time": "t"}


def test_guangzhou_reads_1101_output_as_a_list_the_province_as_an_object() -> None:
    person = {"baseinfo": {"psn_no": "P"}, "insuinfo": [], "idetinfo": []}
    assert Translation(shipped("guangzhou"), "1101").outbound(answer(person))["output"] == [person]
    assert Translation(shipped("guangdong"), "1101").outbound(answer(person))["output"] == person


def test_empty_answers_take_the_dialects_shape() -> None:
    assert Translation(shipped("guangdong"), "2202").outbound(answer({}))["output"] == {}
    assert Translation(shipped("guangdong"), "2202").outbound(answer(None, infcode=-1))["output"] == {}
    d = load(x={"name": "x", "answer": {"empty_output": ""}})["x"]
    assert Translation(d, "2202").outbound(answer({}))["output"] == ""


def test_single_rows_as_objects_and_lists_and_other_date_forms_out() -> None:
    d = load(x={"name": "x", "dates": {"datetime_fields": ["*time"], "date_fields": ["*date"],
                                       "out": {"datetime": "yyyyMMddHHmmss", "date": "yyyy/MM/dd"}},
                "transactions": {"5203": {"answer": {"shape": {"output.setldetail": "object", "output.setlinfo": "list"}}}}})["x"]
    out = Translation(d, "5203").outbound(answer({"setlinfo": {"setl_time": "2026-11-23 10:00:00", "begndate": "2026-11-20"},
                                                  "setldetail": [{"fund_pay_type": "310100"}]}))
    assert out["output"]["setlinfo"] == [{"setl_time": "20261123100000", "begndate": "2026/11/20"}]
    assert out["output"]["setldetail"] == {"fund_pay_type": "310100"}
    several = Translation(d, "5203").outbound(answer({"setldetail": [{"a": 1}, {"a": 2}]}))
    assert several["output"]["setldetail"] == [{"a": 1}, {"a": 2}]  # never drops a row
    assert out["refmsg_time"] == "20261123100000000"  # the envelope's own times keep their form


def test_a_refused_field_is_named_as_the_caller_sent_it() -> None:
    gd = shipped("guangdong")
    t = Translation(gd)
    t.inbound(envelope("2401", {"mdtrtinfo": {"ipt_otp_no": "ZY1"}}))
    assert t.outbound(answer(None, infcode=-1, err_msg="input.mdtrtinfo.ipt_no: required field is missing"))["err_msg"] == \
        "input.mdtrtinfo.ipt_otp_no: required field is missing"
    t = Translation(gd)
    t.inbound(envelope("2207", {"mdtrtinfo": {"mdtrt_id": "1"}}))
    assert t.outbound(answer(None, infcode=-1, err_msg="input.data.psn_no: required field is missing"))["err_msg"] == \
        "input.mdtrtinfo.psn_no: required field is missing"
    t = Translation(gd)
    t.inbound(envelope("2404", {"mdtrt_id": "1"}))
    assert t.outbound(answer(None, infcode=-1, err_msg="input.data.psn_no: required"))["err_msg"] == "input.psn_no: required"
    t = Translation(gd)
    t.inbound(envelope("2301", {"feedetail": [{"frqu_dscr": "x"}]}))
    assert t.outbound(answer(None, infcode=-1, err_msg="input.feedetail[0].used_frqu_dscr: too long"))["err_msg"] == \
        "input.feedetail[0].frqu_dscr: too long"
    assert t.outbound(answer(None, infcode=-1, err_msg="msgid: reused"))["err_msg"] == "msgid: reused"


def test_gateway_errors_in_the_provinces_wrapper() -> None:
    gd = shipped("guangdong")
    assert gd.gateway_error("signature", "x-tif-signature does not match") == {
        "code": "401", "type": "error", "message": "x-tif-signature does not match", "data": None}
    assert gd.gateway_error("scheme", "no")["code"] == "403"  # type: ignore[index]
    assert shipped("national").gateway_error("signature", "no") is None


def test_outbound_bytes_keep_amounts_exact() -> None:
    t = Translation(shipped("guangdong"), "2207")
    body = b'{"infcode":0,"err_msg":"","output":{"setlinfo":{"psn_part_amt":1234567.80,"hifp_pay":0.10},"setldetail":[]}}'
    assert t.outbound_bytes(body) == (b'{"infcode":"0","err_msg":"","output":{"setlinfo":{"psn_part_amt":1234567.80,"hifp_pay":0.10,'
                                      b'"psn_part_am":1234567.80},"setldetail":[],"voladetail":[]}}')
    assert t.outbound_bytes(b"PK\x03\x04") == b"PK\x03\x04"
