"""Hypothesis-generated envelopes against the gateway: never a 5xx, never a traceback, nothing written on refusal."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import HOSPITAL, secret_of
from helpers import encode, post_signed, row_counts
from yibao.client import CounterClient

INFNOS = ["9001", "9002", "1101", "1901", "1301", "1307", "1312", "9101", "9102", "0000", "2207", ""]
KEYS = ["infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "opter_type", "opter", "inf_time", "fixmedins_code", "sign_no", "input",
        "data", "signIn", "signOut", "mdtrt_cert_type", "mdtrt_cert_no", "card_sn", "type", "ver", "page_num", "page_size",
        "fsUploadIn", "fsDownloadIn", "file_qury_no", "in", "filename", "opter_no", "begntime", "psn_name", "certno"]

leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.decimals(allow_nan=False, allow_infinity=False, places=3),
                 st.text(max_size=40), st.sampled_from(["02", "03", "01", "11010519491231002X", "0", "2026-13-40", "1", "insutype"]))
json_values = st.recursive(leaf,
                           lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
                           max_leaves=12)


@st.composite
def envelopes(draw: Any, counter: CounterClient) -> dict[str, Any]:
    envelope = counter.envelope(draw(st.sampled_from(INFNOS)), {})
    for key in draw(st.lists(st.sampled_from(list(envelope)), max_size=4, unique=True)):
        if draw(st.booleans()):
            envelope.pop(key)
        else:
            envelope[key] = draw(json_values)
    envelope["input"] = draw(st.one_of(json_values, st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3)))
    envelope["fixmedins_code"] = HOSPITAL
    return envelope


def test_fuzzed_envelopes_get_an_envelope_back(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        envelope = data.draw(envelopes(counter))
        before = row_counts(db)
        answer = post_signed(http, encode(envelope), HOSPITAL, secret_of(HOSPITAL))
        assert answer["infcode"] in (0, -1)
        assert set(answer) >= {"infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "output"}
        if answer["infcode"] == -1:
            assert answer["err_msg"] and "internal error" not in answer["err_msg"], answer["err_msg"]
            assert row_counts(db) == before

    run()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=300))
def test_fuzzed_bytes_are_refused_cleanly(http, body: bytes) -> None:  # type: ignore[no-untyped-def]
    answer = post_signed(http, body, HOSPITAL, secret_of(HOSPITAL))
    assert answer["infcode"] == -1 and "internal error" not in answer["err_msg"]
