"""SM2 signatures: a signature verifies only for its key and its message; malformed input is a plain refusal."""

import base64

import pytest

from yibao.core import sm2


def test_sign_and_verify_round_trip_and_refusals():
    private, public = sm2.generate_keypair()
    other_private, other_public = sm2.generate_keypair()
    signature = sm2.sign(private, "处方 RX1".encode())
    assert sm2.verify(public, "处方 RX1".encode(), signature)
    assert not sm2.verify(public, "处方 RX2".encode(), signature)           # another message
    assert not sm2.verify(other_public, "处方 RX1".encode(), signature)     # another key
    assert not sm2.verify(public, "处方 RX1".encode(), sm2.sign(other_private, "处方 RX1".encode()))
    for junk in ("", "!!", "AAAA", base64.b64encode(b"\x30\x02\x02\x00").decode()):
        assert not sm2.verify(public, b"x", junk)
    assert sm2.public_key_of(private) == public
    assert sm2.check_public_key(public) == public


def test_keys_that_are_not_sm2_are_refused():
    with pytest.raises(sm2.SM2KeyError):
        sm2.check_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(sm2.SM2KeyError):
        sm2.sign("not a key", b"x")
