"""Dynamic QR codes: sealed, short-lived, bound to person, channel and device. Pure; no storage.

A code is ``YB1`` + Base32 of: key id (1) | IV (16) | SM4-CTR(claims) | HMAC-SM3 tag (16, over
everything before it). Base32 keeps to the QR alphanumeric alphabet, so the symbol stays small
(version 6 at level M for a typical code). The IV doubles as the code's identity: decoding
records it, so a screenshot shown again is refused.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yibao.core import crypto

PREFIX = "YB1"
TAG = 16


class CodeError(Exception):
    """A code that cannot be trusted; ``reason`` is one of forged, expired, malformed, unknown-key."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Claims:
    psn_no: str
    chnl_id: str
    device_no: int
    issued_at: int  # Unix seconds
    ttl_s: int
    code_id: str = ""  # hex of the IV, set when decoded

    @property
    def expires_at(self) -> int:
        return self.issued_at + self.ttl_s


@dataclass(frozen=True)
class KeyMaterial:
    kid: int
    enc_key: bytes  # 16 bytes, SM4
    mac_key: bytes  # 32 bytes, HMAC-SM3


def _pack(claims: Claims) -> bytes:
    psn, chnl = claims.psn_no.encode(), claims.chnl_id.encode()
    return struct.pack(f">B{len(psn)}sB{len(chnl)}sIIH", len(psn), psn, len(chnl), chnl, claims.device_no, claims.issued_at, claims.ttl_s)


def _unpack(data: bytes) -> Claims:
    n = data[0]
    psn = data[1:1 + n].decode()
    m = data[1 + n]
    chnl = data[2 + n:2 + n + m].decode()
    device_no, issued, ttl = struct.unpack(">IIH", data[2 + n + m:2 + n + m + 10])
    return Claims(psn, chnl, device_no, issued, ttl)


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.SM4(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def seal(claims: Claims, key: KeyMaterial, iv: bytes | None = None) -> str:
    iv = iv or os.urandom(16)
    body = bytes([key.kid]) + iv + _ctr(key.enc_key, iv, _pack(claims))
    tag = crypto.hmac_sm3(key.mac_key, PREFIX.encode() + body)[:TAG]
    return PREFIX + base64.b32encode(body + tag).decode().rstrip("=")


def open_code(text: str, keys: dict[int, KeyMaterial], now: int) -> Claims:
    text = text.strip().upper()
    if not text.startswith(PREFIX) or len(text) < 60 or len(text) > 200:
        raise CodeError("malformed", "this is not a yibao medical-insurance code")
    raw = text[len(PREFIX):]
    try:
        blob = base64.b32decode(raw + "=" * (-len(raw) % 8))
    except (ValueError, binascii.Error):
        raise CodeError("malformed", "the code is damaged") from None
    body, tag = blob[:-TAG], blob[-TAG:]
    key = keys.get(body[0])
    if key is None:
        raise CodeError("unknown-key", "the code was sealed with a retired key: refresh the code in the app")
    if not crypto.equal(crypto.hmac_sm3(key.mac_key, PREFIX.encode() + body)[:TAG], tag):
        raise CodeError("forged", "the code fails its seal: forged or altered")
    iv = body[1:17]
    try:
        claims = _unpack(_ctr(key.enc_key, iv, body[17:]))
    except (struct.error, UnicodeDecodeError, IndexError):
        raise CodeError("malformed", "the code is damaged") from None
    if now > claims.expires_at:
        raise CodeError("expired", f"the code expired {now - claims.expires_at} s ago: refresh it in the app")
    if claims.issued_at > now + 30:
        raise CodeError("forged", "the code claims to be from the future")
    return Claims(claims.psn_no, claims.chnl_id, claims.device_no, claims.issued_at, claims.ttl_s, iv.hex())
