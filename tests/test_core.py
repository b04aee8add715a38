"""Identity numbers, money and the national algorithms against known answers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.core import crypto, idcard
from yibao.core.errors import InputError
from yibao.core.money import to_fen, yuan


def test_gb11643_known_number() -> None:
    # The example number printed in GB 11643-1999.
    assert idcard.validate("11010519491231002X") == (date(1949, 12, 31), "2")
    assert idcard.validate("11010519491231002x")[1] == "2"


@pytest.mark.parametrize("bad", ["110105194912310021", "11010519491231002", "1101051949123100XX", "110105194913310025", ""])
def test_gb11643_rejects(bad: str) -> None:
    with pytest.raises(InputError) as error:
        idcard.validate(bad, "input.data.mdtrt_cert_no")
    assert "input.data.mdtrt_cert_no" in error.value.message


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31)), st.integers(0, 999), st.integers(0, 16))
def test_gb11643_any_changed_digit_is_caught(birth: date, sequence: int, position: int) -> None:
    number = idcard.make("370102", birth, sequence)
    assert idcard.validate(number)[0] == birth
    digit = number[position]
    changed = number[:position] + str((int(digit) + 1) % 10) + number[position + 1 :]
    with pytest.raises(InputError):
        idcard.validate(changed)


def test_money_edges() -> None:
    assert to_fen("12.30") == 1230
    assert to_fen(Decimal("0.01")) == 1
    assert to_fen(7) == 700
    assert yuan(123456) == Decimal("1234.56")
    for bad in ("1.234", "abc", True, "NaN"):
        with pytest.raises(InputError):
            to_fen(bad, "medfee_sumamt")


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_money_round_trip(fen: int) -> None:
    assert to_fen(yuan(fen)) == fen


def test_sm3_and_hmac_sm3_known_answers() -> None:
    # GB/T 32905 example: SM3("abc").
    assert crypto.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    # Cross-checked with `echo -n abc | openssl dgst -sm3 -hmac key`.
    assert crypto.hmac_sm3_hex(b"key", b"abc") == "28e63256e7c5a087b1f073265dc53092163f7b82729735d06f28f10af9d52393"


def test_sm4_known_answer_and_round_trip() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    # GB/T 32907 example: one block, plaintext = key; our helper adds a PKCS#7 block.
    assert crypto.sm4_ecb_encrypt(key, key)[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    assert crypto.sm4_ecb_decrypt(key, crypto.sm4_ecb_encrypt(key, "医保".encode())) == "医保".encode()


def test_csb_signature_known_answer() -> None:
    params = {"_api_name": "PING", "_api_version": "vcsb", "_api_timestamp": "1234567890123", "_api_access_key": "ak", "a": "1", "b": "2"}
    assert crypto.csb_signature("sk", params) == "FJZJ2EhieLec7iJQXe8XzuE9kL4="


def test_tif_signature_is_sha256_of_ts_token_nonce_ts() -> None:
    import hashlib

    assert crypto.tif_signature("1700000000", "tok", "n1") == hashlib.sha256(b"1700000000tokn11700000000").hexdigest()
